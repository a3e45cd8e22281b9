// ota-sign: the firmware team's release-signing tool, run in CI with the offline release key. It signs an image's
// release statement (device/protocol/release.ts) and the key lists that rotate the keys devices trust.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";
import type { PublicKeyEntry, ReleaseSignature } from "../device/protocol";
import {
  generateReleaseKey, parseKeyFile, parsePublicKey, parseServerKey, releaseStatement, signKeyList, signRelease, SigningError, verifyRelease,
} from "./signing";

const USAGE = `usage:
  ota-sign keygen --out RELEASE.key              a new release key (file mode 0600); prints its public key
  ota-sign pubkey RELEASE.key                    prints the public key: {"key_id", "public_key"}
  ota-sign sign FILE.bin --key RELEASE.key --model MODEL [--version V] [--secure-version N] [--out FILE.sig]
                        signs sha256, version, secure_version and model (read from ESP app images); stdout without --out
  ota-sign verify FILE.bin --sig FILE.sig --public KEY [--model MODEL] [--version V]
                        KEY is keyId:base64 or the JSON keygen prints (or a file holding either)
  ota-sign key-list --key RELEASE.key --version N --release KEY… --server KEY… [--out LIST.json]
                        a key list signed by a current release key (upload: PUT /api/v1/keys/key-list); a server
                        KEY may also be keyId:ecdsa-p256-sha256:base64 or an entry of GET /api/v1/keys`;

const OPTIONS: ParseArgsConfig["options"] = {
  out: { type: "string" }, key: { type: "string" }, model: { type: "string" }, version: { type: "string" },
  "secure-version": { type: "string" }, sig: { type: "string" }, public: { type: "string" },
  release: { type: "string", multiple: true }, server: { type: "string", multiple: true }, help: { type: "boolean", short: "h" },
};

type Out = (line: string) => void;

export async function main(argv: string[], out: Out = (l) => console.log(l), err: Out = (l) => console.error(l)): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (e) {
    err(`ota-sign: ${(e as Error).message.replace(/\. To specify a positional.*$/s, "")}\n${USAGE}`);
    return 2;
  }
  const [cmd, file] = parsed.positionals;
  const o = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (o.help || !cmd) {
    out(USAGE);
    return cmd || o.help ? 0 : 2;
  }
  const str = (name: string): string => {
    const v = o[name];
    if (typeof v !== "string" || v === "") throw new SigningError(`--${name} is required`);
    return v;
  };
  const emit = (text: string) => (typeof o.out === "string" ? writeFileSync(o.out, text + "\n") : out(text));
  try {
    switch (cmd) {
      case "keygen": {
        const path = str("out");
        if (existsSync(path)) throw new SigningError(`${path} exists already: a release key is never overwritten`);
        const key = generateReleaseKey();
        writeFileSync(path, JSON.stringify(key, null, 2) + "\n", { mode: 0o600 });
        out(JSON.stringify({ key_id: key.key_id, public_key: key.public_key }));
        return 0;
      }
      case "pubkey": {
        const key = parseKeyFile(readFileSync(need(file, "RELEASE.key"), "utf8"));
        out(JSON.stringify({ key_id: key.key_id, public_key: key.public_key }));
        return 0;
      }
      case "sign": {
        const key = parseKeyFile(readFileSync(str("key"), "utf8"));
        const statement = releaseStatement(readFileSync(need(file, "FILE.bin")), { model: str("model"), ...versionOpts(o) });
        emit(JSON.stringify(signRelease(statement, key)));
        return 0;
      }
      case "verify": {
        const sig = JSON.parse(readFileSync(str("sig"), "utf8")) as ReleaseSignature;
        const key = parsePublicKey(readKeyArg(str("public")));
        const model = typeof o.model === "string" ? o.model : (sig.statement?.device_model ?? null);
        const statement = releaseStatement(readFileSync(need(file, "FILE.bin")), { model, ...versionOpts(o), ...(o.version === undefined && sig.statement ? { version: sig.statement.version } : {}) });
        if (!verifyRelease(statement, sig, key)) {
          err(`ota-sign: signature INVALID for ${JSON.stringify(statement)} by ${key.key_id}`);
          return 1;
        }
        out(`OK: ${key.key_id} signed sha256 ${statement.sha256}, version ${statement.version}, secure_version ${statement.secure_version}, model ${statement.device_model}`);
        return 0;
      }
      case "key-list": {
        const key = parseKeyFile(readFileSync(str("key"), "utf8"));
        const version = Number(str("version"));
        if (!Number.isInteger(version) || version < 1) throw new SigningError("--version must be a positive integer, above the devices' current one");
        const keys = (name: string, parse: (text: string) => PublicKeyEntry) => ((o[name] as string[] | undefined) ?? []).map((k) => parse(readKeyArg(k)));
        const list = { key_list_version: version, issued_at: new Date().toISOString(), release_keys: keys("release", parsePublicKey), server_keys: keys("server", parseServerKey) };
        if (list.release_keys.length === 0 || list.server_keys.length === 0) throw new SigningError("a key list needs at least one --release and one --server key");
        emit(JSON.stringify(signKeyList(list, key)));
        return 0;
      }
      default:
        err(`ota-sign: unknown command ${cmd}\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof SigningError || (e as { code?: string }).code === "ENOENT" || e instanceof SyntaxError) {
      err(`ota-sign: ${(e as Error).message}`);
      return 1;
    }
    throw e;
  }
}

function need(v: string | undefined, what: string): string {
  if (!v) throw new SigningError(`${what} is required`);
  return v;
}

function versionOpts(o: Record<string, unknown>): { version?: string; secureVersion?: number } {
  return {
    ...(typeof o.version === "string" ? { version: o.version } : {}),
    ...(typeof o["secure-version"] === "string" ? { secureVersion: Number(o["secure-version"]) } : {}),
  };
}

/** A key given inline, or the path of a file holding it. */
function readKeyArg(v: string): string {
  return !v.trim().startsWith("{") && !v.includes(":") && existsSync(v) ? readFileSync(v, "utf8") : v;
}
