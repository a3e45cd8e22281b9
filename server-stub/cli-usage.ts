// ota-server's options, usage texts and its one-line user error.
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { databaseUrlProblem } from "./db/database-url";

const RUN = `  ota-server [--port 8221] [--host 0.0.0.0] [--data-dir DIR] [--public-url URL] [--database-url postgres://…]
             [--mqtt-port 1883 | --mqtt-url mqtt://host:port [--mqtt-username USER] [--mqtt-provisioning dynsec|none] | --no-mqtt]
             [--metrics-token TOKEN] [--drain-seconds 30]
             [--dev-tokens [--auth-port 8202]] [--device-allow-list] [--distinct-approver]
             [--signing-key FILE] [--pid-file PATH]
             [--tls-cert FILE --tls-key FILE | --insecure-http] [--device-certs | --tls-client-ca FILE]
             [--log-dir logs] [--log-file PATH] [--log-format text|json] [--log-level info]
             [--log-max-mb 10] [--quiet]
             [--max-upload-mb 32] [--manifest-ttl SECONDS] [--default-timeout-minutes 0]
             [--cdn-url URL [--cdn-fallback-url URL] [--cdn-cache-control VALUE]]
             [--event-retention-days 30] [--allow-http-webhooks]
             [--release-key KEY_ID:BASE64 | --release-key FILE …] [--require-release-signature]
    Runs the server until SIGINT/SIGTERM (or \`ota-server stop\`). Logs go to the terminal and to
    <log-dir>/ota_service.log (rotated at --log-max-mb, 3 old files kept); --quiet: file only.
    --dev-tokens: POST /api/v1/auth/dev-token for callers on this machine only (operator tokens unless a
    role is asked for), also on --auth-port, which listens on 127.0.0.1. Off by default: use API keys.
    --cdn-url: manifests send devices to this mirror of the server's download paths, with
    --cdn-fallback-url (default: this server) for a device to switch to after a failure.
    REST, MQTT and dev tokens speak TLS with --tls-cert/--tls-key, or else with a private CA and certificate
    generated into <data-dir>/tls/ (devices pin tls/ca.pem); plain only on a loopback --host or with --insecure-http.
    --device-certs: mutual TLS: HTTPS and MQTTS ask for a client certificate, and one the generated CA issued to a
    device (\`ota-server device-cert\`) stands for that device instead of an API key; --tls-client-ca: the same with
    your own CA issuing them. Off by default; operators keep their API keys and tokens.
    --mqtt-url: an external broker; with dynsec provisioning (default) Mosquitto 2's dynamic-security plugin, where
    the server keeps each device's account and ACL, logged in as its admin: --mqtt-username or $OTA_MQTT_USERNAME,
    password in $OTA_MQTT_PASSWORD (never on the command line). --mqtt-provisioning none: the broker's own ACLs.
    GET /ready: 503 unless the database answers and the broker is connected. GET /metrics (Prometheus): a
    viewer/operator/admin credential or the bearer --metrics-token ($OTA_METRICS_TOKEN); open on a loopback --host.
    --database-url ($OTA_DATABASE_URL): PostgreSQL instead of <data-dir>/ota.sqlite; several servers may share
    it (one runs the campaign engine). Passwords in $OTA_DATABASE_URL or $PGPASSWORD; off this machine, sslmode=verify-full.
    On SIGTERM the server stops accepting and lets downloads finish for up to --drain-seconds, then cuts them.`;
const WAIT = `  ota-server wait [--port 8221 | --url URL] [--cacert FILE] [--timeout 30]
    Returns once GET /health answers (exit 1 after the timeout): start a server with \`&\`, then wait.
    An https URL is verified against --cacert (default <data-dir>/tls/ca.pem).`;
const STOP = `  ota-server stop [--data-dir DIR | --pid-file PATH] [--timeout 10]
    Stops the server of that data dir (its pid is in <data-dir>/ota-server.pid) and waits until it exited;
    exit 0 also when none was running.`;
const KEYS = `  ota-server keys [list | rotate [ed25519 | ecdsa-p256-sha256] | retire KEY_ID] [--data-dir DIR]
    Lists the manifest signing keys; "signing": true marks those that sign (the newest active key of each
    algorithm: every manifest carries one signature per algorithm). rotate adds a key (default ed25519).`;
const API_KEY = `  ota-server api-key create --role admin|operator|viewer [--name NAME] [--data-dir DIR]
  ota-server api-key list [--role ROLE] [--data-dir DIR]
  ota-server api-key revoke KEY_ID [--data-dir DIR]
    create prints a new key once (and its key_id); list shows every key by key_id, never the key itself;
    revoke refuses the key from then on and closes its MQTT sessions within a second, server running or not.`;
const DEVICE_CERT = `  ota-server device-cert DEVICE_ID [--out DIR] [--data-dir DIR]
    Issues a client certificate for the device from the CA generated in <data-dir>/tls/ and writes
    DIR/DEVICE_ID.pem and DIR/DEVICE_ID-key.pem (default DIR: .); with --device-certs it stands for the device.
    Issuing again revokes the device's earlier certificates; it is listed by \`api-key list\` (key_prefix x509:)
    and refused once that key_id or the device (POST /api/v1/devices/{id}/revoke) is revoked.`;

export const USAGE = `usage:
${RUN}
${WAIT}
${STOP}
${KEYS}
${API_KEY}
${DEVICE_CERT}

The data dir defaults to $OTA_DATA_DIR or ./.ota-data; the ports to $OTA_PORT, $OTA_MQTT_PORT, $OTA_AUTH_PORT
or 8221, 1883, 8202. JWT secret: $OTA_JWT_SECRET or <data-dir>/jwt-secret. Every command works on PostgreSQL
instead of <data-dir>/ota.sqlite with --database-url or $OTA_DATABASE_URL.`;

export const HELP = { wait: `usage:\n${WAIT}`, stop: `usage:\n${STOP}`, keys: `usage:\n${KEYS}`, "api-key": `usage:\n${API_KEY}`, "device-cert": `usage:\n${DEVICE_CERT}` };

/** A user error: one line on stderr, a hint, exit code 2 (usage) or 1. */
export class CliError extends Error {
  readonly hint: string;
  constructor(message: string, topic?: keyof typeof HELP | null, readonly exitCode = 2, hint?: string) {
    super(message);
    this.hint = hint ?? `see \`ota-server ${topic ? `${topic} ` : ""}--help\``;
  }
}

/** --database-url or $OTA_DATABASE_URL (which may carry the password); null: SQLite in the data dir. */
export function databaseUrlOf(value: string | undefined): string | null {
  const url = value ?? process.env.OTA_DATABASE_URL;
  if (!url) return null;
  const problem = databaseUrlProblem(url, value !== undefined);
  if (problem) throw new CliError(value !== undefined ? problem.replace(/^the database URL/, "--database-url") : `$OTA_DATABASE_URL: ${problem}`);
  return url;
}

const OPTIONS = {
  port: { type: "string" }, host: { type: "string" }, "data-dir": { type: "string" }, "public-url": { type: "string" },
  "mqtt-port": { type: "string" }, "mqtt-url": { type: "string" }, "no-mqtt": { type: "boolean" },
  "mqtt-username": { type: "string" }, "mqtt-provisioning": { type: "string" }, "metrics-token": { type: "string" }, "database-url": { type: "string" }, "drain-seconds": { type: "string" },
  "auth-port": { type: "string" }, "dev-tokens": { type: "boolean" }, "no-dev-token": { type: "boolean" },
  "device-allow-list": { type: "boolean" }, "distinct-approver": { type: "boolean" }, "signing-key": { type: "string" },
  "log-level": { type: "string" }, "log-format": { type: "string" }, "log-file": { type: "string" }, "log-dir": { type: "string" },
  "log-max-mb": { type: "string" }, quiet: { type: "boolean" }, "pid-file": { type: "string" },
  "max-upload-mb": { type: "string" }, "manifest-ttl": { type: "string" }, "default-timeout-minutes": { type: "string" },
  "event-retention-days": { type: "string" }, "allow-http-webhooks": { type: "boolean" },
  "cdn-url": { type: "string" }, "cdn-fallback-url": { type: "string" }, "cdn-cache-control": { type: "string" },
  url: { type: "string" }, timeout: { type: "string" }, cacert: { type: "string" },
  "release-key": { type: "string", multiple: true }, "require-release-signature": { type: "boolean" },
  "tls-cert": { type: "string" }, "tls-key": { type: "string" }, "insecure-http": { type: "boolean" },
  "device-certs": { type: "boolean" }, "tls-client-ca": { type: "string" }, out: { type: "string" },
  role: { type: "string" }, name: { type: "string" }, help: { type: "boolean", short: "h" },
} as const;

export type CliValues = ReturnType<typeof parse>["values"];

export function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (e) {
    throw new CliError((e as Error).message.replace(/\. To specify.*$/s, ""));
  }
}

export function int(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CliError(`--${name} must be a non-negative integer, not ${JSON.stringify(value)}`);
  return n;
}

export function dataDirOf(values: CliValues): string {
  return resolve(values["data-dir"] ?? process.env.OTA_DATA_DIR ?? ".ota-data");
}

export function pidFileOf(values: CliValues): string {
  return resolve(values["pid-file"] ?? join(dataDirOf(values), "ota-server.pid"));
}
