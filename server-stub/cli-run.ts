// `ota-server` (no command): run the server with its log file, pid file and signal handling.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import pino from "pino";
import { base64Decode, KEY_ID_MAX, type PublicKeyEntry } from "../device/protocol";
import { CliError, type CliValues, databaseUrlOf, dataDirOf, int, pidFileOf } from "./cli-usage";
import { isRunning, readPid } from "./pid-file";
import { logDestination, RotatingFile, type Sink } from "./log";
import { serverOptionsProblem, startOtaServer } from "./server";
import { defaultHosts, isLoopbackHost, loadOrCreateTls, loadTlsFiles, type TlsIdentity } from "./tls";

/** How long a shutdown may take beyond the drain deadline before the process exits anyway (a stuck close). */
const SHUTDOWN_SLACK_MS = 5000;

export async function runServer(values: CliValues): Promise<void> {
  const format = values["log-format"] ?? "text";
  if (format !== "json" && format !== "text") throw new CliError("--log-format must be text or json");
  const dataDir = dataDirOf(values);
  const pidFile = pidFileOf(values);
  const other = readPid(pidFile);
  if (other !== null && other !== process.pid && isRunning(other)) {
    throw new CliError(`a server already runs on ${dataDir} (pid ${other})`, null, 1, `stop it with \`ota-server stop --data-dir ${dataDir}\`, or pick another --data-dir`);
  }
  const maxUploadBytes = int(values["max-upload-mb"], "max-upload-mb", 32) * 1024 * 1024;
  if (!values["cdn-url"] && (values["cdn-fallback-url"] || values["cdn-cache-control"])) throw new CliError("--cdn-fallback-url and --cdn-cache-control need --cdn-url");
  const cdn = values["cdn-url"]
    ? { enabled: true, base_url: values["cdn-url"], fallback_url: values["cdn-fallback-url"] ?? null, cache_control: values["cdn-cache-control"] ?? null }
    : null;
  const problem = serverOptionsProblem({ publicUrl: values["public-url"], maxUploadBytes, cdn });
  if (problem) {
    throw new CliError(problem.replace(/^public URL/, "--public-url").replace(/^max upload size/, "--max-upload-mb").replace(/^CDN base URL/, "--cdn-url").replace(/^CDN fallback URL/, "--cdn-fallback-url"));
  }
  const retentionDays = int(values["event-retention-days"], "event-retention-days", 30);
  if (retentionDays < 1) throw new CliError("--event-retention-days must be at least 1");
  const releaseKeys = releaseKeysOf(values["release-key"] ?? []);
  if (values["require-release-signature"] && releaseKeys.length === 0) throw new CliError("--require-release-signature needs at least one --release-key");
  const env = process.env;
  const port = portArg(values.port ?? env.OTA_PORT, "port", 8221);
  const mqttPort = values["no-mqtt"] ? null : portArg(values["mqtt-port"] ?? env.OTA_MQTT_PORT, "mqtt-port", 1883);
  // Dev tokens only when asked for (--no-dev-token, the old opt-out, is still accepted and wins).
  const devTokens = values["dev-tokens"] === true && !values["no-dev-token"];
  const authPort = devTokens ? portArg(values["auth-port"] ?? env.OTA_AUTH_PORT, "auth-port", 8202) : null;
  const logFile = resolve(values["log-file"] ?? join(values["log-dir"] ?? "logs", "ota_service.log"));
  const file = new RotatingFile(logFile, int(values["log-max-mb"], "log-max-mb", 10) * 1024 * 1024 || Infinity);
  const sinks: Sink[] = [file];
  if (!values.quiet) sinks.push({ write: (text) => process.stdout.write(text) });
  const logger = pino({ level: values["log-level"] ?? "info" }, logDestination(format, sinks));

  const drainMs = int(values["drain-seconds"], "drain-seconds", 30) * 1000;
  const provisioning = values["mqtt-provisioning"] ?? "dynsec";
  if (provisioning !== "dynsec" && provisioning !== "none") throw new CliError("--mqtt-provisioning must be dynsec or none");
  const mqttUrl = mqttUrlOf(values["mqtt-url"]);
  const databaseUrl = databaseUrlOf(values["database-url"]);
  const host = values.host ?? "0.0.0.0";
  const identity = tlsOf(values, dataDir, host);
  const tls = identity ? { ...identity, clientCa: clientCaOf(values, identity) } : null;
  if (!tls && (values["device-certs"] || values["tls-client-ca"])) throw new CliError("--device-certs and --tls-client-ca need TLS: drop --insecure-http, or use a non-loopback --host");

  let server;
  try {
    server = await startOtaServer({
      dataDir,
      databaseUrl,
      port,
      host,
      tls,
      publicUrl: values["public-url"],
      mqttPort,
      mqttUrl,
      mqttUsername: values["mqtt-username"] ?? env.OTA_MQTT_USERNAME ?? null,
      mqttPassword: env.OTA_MQTT_PASSWORD ?? null,
      mqttProvisioning: provisioning,
      metricsToken: values["metrics-token"] ?? env.OTA_METRICS_TOKEN ?? null,
      drainMs,
      authPort,
      devToken: devTokens,
      deviceAllowList: values["device-allow-list"] === true,
      distinctApprover: values["distinct-approver"] === true,
      signingKeyFile: values["signing-key"] ?? null,
      logger,
      maxUploadBytes,
      manifestTtlSeconds: int(values["manifest-ttl"], "manifest-ttl", 86400),
      defaultTimeoutMinutes: int(values["default-timeout-minutes"], "default-timeout-minutes", 0),
      eventRetentionDays: retentionDays,
      allowHttpWebhooks: values["allow-http-webhooks"] ?? false,
      cdn,
      releaseKeys,
      requireReleaseSignature: values["require-release-signature"] ?? false,
    });
  } catch (e) {
    file.close();
    const err = e as NodeJS.ErrnoException & { port?: number };
    if (err.code === "EADDRINUSE") throw portInUse(err, { port, mqttPort, authPort });
    throw e;
  }
  mkdirSync(dirname(pidFile), { recursive: true });
  writeFileSync(pidFile, `${process.pid}\n`);
  if (tls) {
    const pin = tls.dir ? `; devices pin the CA ${join(tls.dir, "ca.pem")}${tls.created ? ", generated now" : ""}` : "";
    process.stdout.write(`ota-server TLS: certificate SHA-256 ${tls.fingerprint}${pin}\n`);
    if (tls.clientCa) process.stdout.write("ota-server mutual TLS: a device certificate (ota-server device-cert DEVICE_ID) stands for its device\n");
    logger.info({ event: "ota_server_tls", fingerprint: tls.fingerprint, ca: tls.dir ? join(tls.dir, "ca.pem") : null }, `ota_server_tls fingerprint=${tls.fingerprint}`);
  }
  process.stdout.write(`ota-server ready: ${server.url} (log ${logFile}, pid ${process.pid})\n`);

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    const limit = drainMs + SHUTDOWN_SLACK_MS;
    setTimeout(() => {
      process.stderr.write(`ota-server: shutdown took over ${limit} ms; exiting anyway\n`);
      process.exit(1);
    }, limit).unref();
    logger.info({ event: "ota_server_stopping", signal }, `ota_server_stopping signal=${signal}`);
    void server.close().finally(() => {
      if (readPid(pidFile) === process.pid) rmSync(pidFile, { force: true });
      file.close();
      process.exit(0);
    });
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  process.on("SIGHUP", shutdown);
  watchNpx(shutdown);
}

/**
 * `npx ota-server &` puts npm and a shell between $! and this process, and `kill $!` stops only
 * them: this process is re-parented. Started by npm exec, the server follows its parent out.
 */
function watchNpx(shutdown: (reason: string) => void): void {
  if (process.env.npm_command !== "exec") return;
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) shutdown("npx-exited");
  }, 250).unref();
}

/** TLS unless asked for plain (--insecure-http) or bound to loopback: the operator's files, or a CA and certificate
 * generated into <data-dir>/tls/ on first start (the same CA on every later start). */
function tlsOf(values: CliValues, dataDir: string, host: string): (TlsIdentity & { created?: boolean }) | null {
  const certFile = values["tls-cert"];
  const keyFile = values["tls-key"];
  if ((certFile === undefined) !== (keyFile === undefined)) throw new CliError("--tls-cert and --tls-key go together");
  if (certFile && values["insecure-http"]) throw new CliError("--insecure-http turns TLS off: drop it, or --tls-cert/--tls-key");
  if (certFile && keyFile) {
    try {
      return loadTlsFiles(certFile, keyFile);
    } catch (e) {
      throw new CliError(`--tls-cert/--tls-key: ${(e as Error).message}`, null, 1, "give a PEM certificate and its PEM private key");
    }
  }
  if (values["insecure-http"] || isLoopbackHost(host)) return null;
  const publicHost = values["public-url"] ? new URL(values["public-url"]).hostname.replace(/^\[|\]$/g, "") : null;
  return loadOrCreateTls(join(dataDir, "tls"), defaultHosts([host, ...(publicHost ? [publicHost] : [])]));
}

/** The CA whose device certificates stand for devices (mutual TLS), or null when off (the default). */
function clientCaOf(values: CliValues, tls: TlsIdentity): string | null {
  const file = values["tls-client-ca"];
  if (file && values["device-certs"]) throw new CliError("--device-certs trusts the generated CA, --tls-client-ca your own: give one");
  if (file) {
    try {
      return readFileSync(file, "utf8");
    } catch (e) {
      throw new CliError(`--tls-client-ca: ${(e as Error).message}`, null, 1, "give the PEM certificate of the CA that issues device certificates");
    }
  }
  if (!values["device-certs"]) return null;
  if (!tls.ca) throw new CliError("--device-certs uses the generated CA, and --tls-cert brings your own certificate: give --tls-client-ca");
  return tls.ca;
}

/** --mqtt-url: mqtt(s)://host:port, without a password (anyone on the machine can read a command line). */
function mqttUrlOf(value: string | undefined): string | null {
  if (value === undefined) return null;
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    /* reported below */
  }
  if (url?.password) throw new CliError("--mqtt-url must not carry a password: others can read the command line; set $OTA_MQTT_PASSWORD");
  if (!url || !/^mqtts?:$/.test(url.protocol) || !url.hostname || (url.pathname !== "" && url.pathname !== "/")) {
    throw new CliError("--mqtt-url must be mqtt://host:port or mqtts://host:port");
  }
  return value;
}

function portArg(value: string | undefined, name: string, fallback: number): number {
  const n = int(value, name, fallback);
  if (n > 65535) throw new CliError(`--${name} must be a port number (0-65535; 0 picks a free one), not ${n}`);
  return n;
}

function portInUse(err: NodeJS.ErrnoException & { port?: number }, ports: { port: number; mqttPort: number | null; authPort: number | null }): CliError {
  const flag = err.port === ports.mqttPort ? "--mqtt-port (or --no-mqtt)" : err.port === ports.authPort ? "--auth-port (or leave out --dev-tokens)" : "--port";
  const what = flag.startsWith("--mqtt") ? "MQTT" : flag.startsWith("--auth") ? "dev-token" : "REST";
  return new CliError(
    `port ${err.port} (${what}) is already in use`,
    null,
    1,
    `choose another with ${flag}, or stop the server that holds it (\`ota-server stop --data-dir ITS_DATA_DIR\`)`,
  );
}

/** --release-key: "keyId:base64", or a file with what `ota-sign keygen` / `ota-sign pubkey` print. */
function releaseKeysOf(args: string[]): PublicKeyEntry[] {
  return args.map((arg) => {
    const text = existsSync(arg) ? readFileSync(arg, "utf8").trim() : arg;
    let key: PublicKeyEntry | null = null;
    try {
      const o = (text.startsWith("{") ? JSON.parse(text) : null) as Partial<PublicKeyEntry> | null;
      const at = text.lastIndexOf(":");
      key = o ? { key_id: String(o.key_id), public_key: String(o.public_key) } : at > 0 ? { key_id: text.slice(0, at), public_key: text.slice(at + 1) } : null;
      if (key && (key.key_id.length > KEY_ID_MAX || base64Decode(key.public_key).length !== 32)) key = null;
    } catch {
      key = null;
    }
    if (!key) throw new CliError(`--release-key ${arg.slice(0, 60)} is not KEY_ID:BASE64 (a 32-byte ed25519 key) nor a file with {"key_id","public_key"}`);
    return key;
  });
}
