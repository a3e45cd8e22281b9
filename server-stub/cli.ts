// ota-server CLI: run the server, wait for it, stop it, manage signing keys, API keys and device certificates.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { isValidDeviceId } from "../device/protocol";
import { ApiKeyStore } from "./auth/api-keys";
import { ROLES, type Role } from "./auth/principal";
import { CliError, type CliValues, databaseUrlOf, dataDirOf, HELP, parse, USAGE } from "./cli-usage";
import { systemClock } from "./clock";
import { openDatabase } from "./db";
import { KeyStore } from "./signing/keystore";
import { fingerprint256, issueDeviceCert } from "./tls";
import { SIGNATURE_ALGORITHMS, type SignatureAlg } from "../device/protocol";

function openStores(values: CliValues) {
  const dir = dataDirOf(values);
  mkdirSync(dir, { recursive: true });
  return openDatabase({ sqlitePath: join(dir, "ota.sqlite"), databaseUrl: databaseUrlOf(values["database-url"]) });
}

function keysCommand(values: CliValues, sub: string | undefined, arg: string | undefined): void {
  if (sub !== undefined && !["list", "rotate", "retire"].includes(sub)) throw new CliError(`unknown keys command ${JSON.stringify(sub)}`, "keys");
  if (sub === "retire" && !arg) throw new CliError("keys retire needs a KEY_ID (see `ota-server keys`)", "keys");
  const db = openStores(values);
  try {
    const keys = new KeyStore(db, systemClock);
    if (sub === "rotate") {
      if (arg !== undefined && !(SIGNATURE_ALGORITHMS as readonly string[]).includes(arg)) throw new CliError(`keys rotate [ALGORITHM]: one of ${SIGNATURE_ALGORITHMS.join(", ")}`, "keys");
      keys.rotate(arg as SignatureAlg | undefined);
    }
    if (sub === "retire") {
      try {
        if (!keys.retire(arg!)) throw new CliError(`no active key ${arg}`, "keys");
      } catch (e) {
        throw e instanceof CliError ? e : new CliError((e as Error).message, "keys");
      }
    }
    // The newest active key of each algorithm signs every manifest; the others stay trusted by devices until retired.
    const signer = keys.ensureActive().key_id;
    const signers = new Set(keys.signers().map((k) => k.key_id));
    const list = keys.list().map((k) => ({ ...k, signing: signers.has(k.key_id), created_at: new Date(k.created_at).toISOString() }));
    console.log(JSON.stringify({ data_dir: dataDirOf(values), signing_key_id: signer, keys: list }, null, 2));
  } finally {
    db.close();
  }
}

function apiKeyCommand(values: CliValues, sub: string | undefined, arg: string | undefined): void {
  if (sub !== "create" && sub !== "list" && sub !== "revoke") {
    throw new CliError(sub ? `unknown api-key command ${JSON.stringify(sub)}` : "api-key needs a command: create, list or revoke", "api-key");
  }
  const role = values.role;
  if (sub === "create" && role !== "admin" && role !== "operator" && role !== "viewer") throw new CliError("--role must be admin, operator or viewer", "api-key");
  if (sub === "list" && role !== undefined && !(ROLES as readonly string[]).includes(role)) throw new CliError(`--role must be one of ${ROLES.join(", ")}`, "api-key");
  if (sub === "revoke" && !arg) throw new CliError("api-key revoke needs a KEY_ID (see `ota-server api-key list`)", "api-key");
  const db = openStores(values);
  try {
    const store = new ApiKeyStore(db, systemClock);
    if (sub === "create") {
      const { api_key, info } = store.create(role as Role, { name: values.name });
      console.log(JSON.stringify({ api_key, key_id: info.key_id, role: info.role, name: info.name }, null, 2));
    } else if (sub === "list") {
      const keys = store.list({ role: role as Role | undefined }).map((k) => ({ ...k, created_at: new Date(k.created_at).toISOString() }));
      console.log(JSON.stringify({ api_keys: keys }, null, 2));
    } else {
      // A running server sees the revocation at once over HTTP and closes the key's MQTT sessions within a second.
      const info = store.revoke(arg!);
      if (!info) throw new CliError(`no API key ${arg}`, "api-key", 1);
      console.log(JSON.stringify({ ...info, created_at: new Date(info.created_at).toISOString() }, null, 2));
    }
  } finally {
    db.close();
  }
}

/** Issues a device's client certificate from the generated CA and records it as the device's credential. */
function deviceCertCommand(values: CliValues, deviceId: string | undefined): void {
  if (!deviceId || !isValidDeviceId(deviceId)) throw new CliError(`device-cert needs a DEVICE_ID (1-128 of A-Z a-z 0-9 . _ : -), not ${JSON.stringify(deviceId ?? "")}`, "device-cert");
  const tlsDir = join(dataDirOf(values), "tls");
  if (!existsSync(join(tlsDir, "ca.pem")) || !existsSync(join(tlsDir, "ca-key.pem"))) {
    throw new CliError(`no generated CA in ${tlsDir}`, "device-cert", 1, "start ota-server once with TLS and without --tls-cert: it generates the CA there");
  }
  const ca = { cert: readFileSync(join(tlsDir, "ca.pem"), "utf8"), key: readFileSync(join(tlsDir, "ca-key.pem"), "utf8") };
  const { cert, key } = issueDeviceCert(ca, deviceId);
  const out = resolve(values.out ?? ".");
  mkdirSync(out, { recursive: true });
  const certFile = join(out, `${deviceId}.pem`);
  const keyFile = join(out, `${deviceId}-key.pem`);
  writeFileSync(keyFile, key, { mode: 0o600 });
  writeFileSync(certFile, cert);
  const db = openStores(values);
  try {
    const info = new ApiKeyStore(db, systemClock).addDeviceCert(deviceId, fingerprint256(cert));
    console.log(JSON.stringify({ device_id: deviceId, cert: certFile, key: keyFile, fingerprint: fingerprint256(cert), key_id: info.key_id }, null, 2));
  } finally {
    db.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [cmd, sub, arg] = positionals;
  if (values.help || cmd === "help") {
    const topic = cmd === "help" ? sub : cmd;
    console.log(topic && topic in HELP ? HELP[topic as keyof typeof HELP] : USAGE);
    return 0;
  }
  if (cmd === "keys") keysCommand(values, sub, arg);
  else if (cmd === "api-key") apiKeyCommand(values, sub, arg);
  else if (cmd === "device-cert") deviceCertCommand(values, sub);
  else if (cmd === "wait" || cmd === "stop") {
    // Loaded here so the run path does not pay for them (and the other way round).
    const control = await import("./cli-control");
    return cmd === "wait" ? control.waitCommand(values) : control.stopCommand(values);
  } else if (cmd !== undefined) throw new CliError(`unknown command ${JSON.stringify(cmd)}`);
  else await (await import("./cli-run")).runServer(values);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof CliError) {
      console.error(`ota-server: ${e.message}`);
      console.error(`  (${e.hint})`);
      process.exit(e.exitCode);
    }
    console.error(`ota-server: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
