// ota-server CLI: run the server, manage signing keys and API keys.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ApiKeyStore } from "./auth/api-keys";
import { systemClock } from "./clock";
import { openDb } from "./db";
import { KeyStore } from "./signing/keystore";

const USAGE = `usage:
  ota-server [--port 8221] [--host 0.0.0.0] [--data-dir DIR] [--public-url URL]
             [--mqtt-port 1883 | --mqtt-url mqtt://host:port | --no-mqtt]
             [--auth-port 8202] [--no-dev-token] [--signing-key FILE]
             [--log-level info] [--log-format json|text] [--log-file PATH]
             [--max-upload-mb 32] [--manifest-ttl SECONDS] [--default-timeout-minutes 0]
  ota-server keys [list | rotate | retire KEY_ID] [--data-dir DIR]
  ota-server api-key create --role admin|operator|viewer [--name NAME] [--data-dir DIR]

The data dir defaults to $OTA_DATA_DIR or ./.ota-data. JWT secret: $OTA_JWT_SECRET or <data-dir>/jwt-secret.`;

function fail(msg: string): never {
  console.error(`ota-server: ${msg}\n\n${USAGE}`);
  process.exit(2);
}

function int(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer`);
  return n;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: "string" }, host: { type: "string" }, "data-dir": { type: "string" }, "public-url": { type: "string" },
    "mqtt-port": { type: "string" }, "mqtt-url": { type: "string" }, "no-mqtt": { type: "boolean" },
    "auth-port": { type: "string" }, "no-dev-token": { type: "boolean" }, "signing-key": { type: "string" },
    "log-level": { type: "string" }, "log-format": { type: "string" }, "log-file": { type: "string" },
    "max-upload-mb": { type: "string" }, "manifest-ttl": { type: "string" }, "default-timeout-minutes": { type: "string" },
    role: { type: "string" }, name: { type: "string" }, help: { type: "boolean", short: "h" },
  },
});

if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const dataDir = resolve(values["data-dir"] ?? process.env.OTA_DATA_DIR ?? ".ota-data");

function openStores() {
  mkdirSync(dataDir, { recursive: true });
  return openDb(join(dataDir, "ota.sqlite"));
}

async function main(): Promise<void> {
  const [cmd, sub, arg] = positionals;
  if (cmd === "keys") {
    const db = openStores();
    const keys = new KeyStore(db, systemClock);
    if (sub === "rotate") keys.rotate();
    else if (sub === "retire") {
      if (!arg) fail("keys retire needs a KEY_ID");
      try {
        if (!keys.retire(arg)) fail(`no active key ${arg}`);
      } catch (e) {
        fail((e as Error).message);
      }
    } else if (sub !== undefined && sub !== "list") fail(`unknown keys command ${sub}`);
    else keys.ensureActive();
    const list = keys.list().map((k) => ({ ...k, created_at: new Date(k.created_at).toISOString() }));
    console.log(JSON.stringify({ keys: list }, null, 2));
    db.close();
    return;
  }
  if (cmd === "api-key") {
    if (sub !== "create") fail("usage: ota-server api-key create --role ROLE");
    const role = values.role;
    if (role !== "admin" && role !== "operator" && role !== "viewer") fail("--role must be admin, operator or viewer");
    const db = openStores();
    const { api_key, info } = new ApiKeyStore(db, systemClock).create(role, { name: values.name });
    console.log(JSON.stringify({ api_key, role: info.role, name: info.name }, null, 2));
    db.close();
    return;
  }
  if (cmd !== undefined) fail(`unknown command ${cmd}`);

  // Loaded here so `keys` and `api-key` start fast without fastify, aedes and friends.
  const [{ default: pino }, { fileStream, textDestination }, { serverOptionsProblem, startOtaServer }] = await Promise.all([import("pino"), import("./log"), import("./server")]);
  const maxUploadBytes = int(values["max-upload-mb"], "max-upload-mb", 32) * 1024 * 1024;
  const problem = serverOptionsProblem({ publicUrl: values["public-url"], maxUploadBytes });
  if (problem) fail(problem.replace(/^public URL/, "--public-url").replace(/^max upload size/, "--max-upload-mb"));
  const format = values["log-format"] ?? "json";
  if (format !== "json" && format !== "text") fail("--log-format must be json or text");
  const out = values["log-file"] ? fileStream(values["log-file"]) : process.stdout;
  const logger = pino({ level: values["log-level"] ?? "info" }, format === "text" ? textDestination(out) : out);
  const server = await startOtaServer({
    dataDir,
    port: int(values.port, "port", 8221),
    host: values.host ?? "0.0.0.0",
    publicUrl: values["public-url"],
    mqttPort: values["no-mqtt"] ? null : int(values["mqtt-port"], "mqtt-port", 1883),
    mqttUrl: values["mqtt-url"] ?? null,
    authPort: values["no-dev-token"] ? null : int(values["auth-port"], "auth-port", 8202),
    devToken: !values["no-dev-token"],
    signingKeyFile: values["signing-key"] ?? null,
    logger,
    maxUploadBytes,
    manifestTtlSeconds: int(values["manifest-ttl"], "manifest-ttl", 86400),
    defaultTimeoutMinutes: int(values["default-timeout-minutes"], "default-timeout-minutes", 0),
  });
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    await server.close();
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}

main().catch((e: unknown) => {
  console.error(`ota-server: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
