// ota-sim: run simulated ESP32 devices (the real agent over a simulated flash) against an OTA server.
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { TrustedKey } from "../../device/core/config";
import { base64Decode } from "../../device/protocol/base64";
import { createDeviceFlash, programPartition } from "../device-flash";
import { SimDevice } from "../device/sim-device";
import { buildAppImage } from "../../esp-image/app-image";
import { findByName } from "../esp/partition-table";
import { loadPartitionTable } from "../esp/esp-ota";
import { NorFlash } from "../flash/nor-flash";
import { parseMix } from "../device/behaviour-mix";
import { Fleet } from "../fleet/fleet";
import { type CampaignSummary, formatCounts as fmt, liveLine, newestCampaign } from "../fleet/live-line";
import { writeRunning } from "../running-slot";
import { ROUTES } from "../../device/protocol/paths";
import { pinnedFetch, type FetchLike } from "../pinned-fetch";
import { parseArgsMessage, usageOf, wantsHelp } from "./usage";

const USAGE = `usage:
  ota-sim device --id ID --flash FLASH.bin --server URL (--api-key KEY | --client-cert PEM --client-key PEM)
                 [--mqtt URL] [--key PUBKEY ...] [--cacert CA.pem ...] [--model MODEL] [--hardware-version V]
                 [--once] [--verbose]
    Boots the flash (created with a v1.0.0 image if missing) and runs the update agent.
    --key      a trusted server public key, base64 as GET /api/v1/keys returns it (repeatable);
               without it the device trusts the keys in FLASH.bin.keys.json (its "baked-in" config)
    --cacert   pin this CA (PEM; repeat for two while a CA is rotated): https:// and mqtts:// only, the
               server's certificate must chain to it (ota-server's is <data-dir>/tls/ca.pem)
    --client-cert, --client-key  the device's certificate and key (\`ota-server device-cert ID\`), presented
               over TLS (with --cacert) to a server run with --device-certs: no API key needed
    --once     exit after one check-and-update cycle (reboot, confirm or rollback included):
               exit code 0 when the device ends on a verified image
  ota-sim fleet --devices N --server URL [--token TOKEN] [--mqtt URL | --no-mqtt] [--cacert CA.pem ...]
                [--mix healthy=0.9,fail-self-test=0.05,crash=0.05] [--seed S] [--prefix sim-]
                [--image-size 64K] [--poll-interval SECONDS] [--status-every SECONDS] [--group NAME]
                [--until-campaign-ends] [--verbose]
    Runs N devices in this process (own sparse flash, MQTT session and agent each), factory-flashed with
    v1.0.0 and registered with the server (each gets its own API key), until Ctrl-C.
    --token    an admin or operator credential ($OTA_TOKEN): a JWT, or an API key from
               \`ota-server api-key create --role operator\`; without either, a token is taken from the
               server's dev-token endpoint (only a server started with --dev-tokens, from the same machine)
    --group    every device joins this device group (for a campaign's "target_groups")
    --until-campaign-ends  exit once the newest campaign is completed (exit 0), failed or cancelled (exit 1)
    --mqtt     the devices' broker; default: the one the server reports in GET /health
    --mix      board behaviours for any image but the factory one; the rest is healthy
               (fail-self-test: rolls back after the self-test; crash: panics at start; hang: never confirms;
               crash-after-confirm: passes the self-test, then panics once: only its health reports show it)
               A release that fails on a share of boards is an image with a sim "mix" (README: "The fleet simulator")
    Every --status-every seconds (default 5) a line shows versions, agent phases, bytes downloaded and
    the newest campaign: status, stage, done / updating / failed / rolled back.`;

type Out = (line: string) => void;

/** Bad usage (exit 2, with a hint), as opposed to a failure at run time (exit 1). */
class UsageError extends Error {}

export async function main(argv: string[], out: Out = (l) => console.log(l), err: Out = (l) => console.error(l)): Promise<number> {
  try {
    const [cmd, ...rest] = argv;
    if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") {
      out(USAGE);
      return 0;
    }
    if (cmd !== "device" && cmd !== "fleet") {
      err(`ota-sim: unknown command ${JSON.stringify(cmd)}`);
      err("  (see `ota-sim --help`)");
      return 2;
    }
    if (wantsHelp(rest)) {
      out(usageOf(USAGE, "ota-sim", [cmd]));
      return 0;
    }
    return cmd === "device" ? await device(rest, out) : await fleet(rest, out);
  } catch (e) {
    const usage = e instanceof UsageError || (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS"));
    err(`ota-sim: ${usage ? parseArgsMessage(e as Error) : (e as Error).message}`);
    if (usage) err(`  (see \`ota-sim ${argv[0]} --help\`)`);
    return usage ? 2 : 1;
  }
}

async function device(args: string[], out: Out): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      id: { type: "string" },
      flash: { type: "string" },
      server: { type: "string" },
      "api-key": { type: "string" },
      mqtt: { type: "string" },
      key: { type: "string", multiple: true },
      cacert: { type: "string", multiple: true },
      "client-cert": { type: "string" },
      "client-key": { type: "string" },
      model: { type: "string" },
      "hardware-version": { type: "string" },
      once: { type: "boolean" },
      verbose: { type: "boolean" },
    },
  });
  for (const required of ["id", "flash", "server"] as const) {
    if (!values[required]) throw new UsageError(`--${required} is required`);
  }
  const clientCert = readClientCert(values["client-cert"], values["client-key"], values.cacert);
  if (!values["api-key"] && !clientCert) throw new UsageError("--api-key is required (or --client-cert and --client-key)");
  const flashPath = values.flash!;
  const trustedKeys = loadKeys(values.key ?? [], flashPath);
  const flash = existsSync(flashPath) ? NorFlash.open(flashPath) : factoryFlash(flashPath, out);
  const dev = new SimDevice({
    id: values.id!,
    flash,
    serverUrl: values.server!,
    apiKey: values["api-key"] ?? "",
    trustedKeys,
    ...(values.cacert ? { tlsCas: readCas(values.cacert) } : {}),
    ...(clientCert ? { clientCert } : {}),
    ...(values.mqtt ? { mqttUrl: values.mqtt } : {}),
    ...(values.model ? { model: values.model } : {}),
    ...(values["hardware-version"] ? { hardwareVersion: values["hardware-version"] } : {}),
    log: values.verbose ? out : (line) => (/ (warn|error) |\[boot/.test(line) ? out(line) : undefined),
  });
  if (values.once) {
    const r = await dev.runCycle();
    await dev.powerOff();
    writeRunning(flashPath, { running: r.slot, version: r.version, bootedAt: new Date().toISOString() });
    out(`${values.id}: ${r.bricked ? "BRICKED" : `running ${r.slot} v${r.version}`} after ${r.boots} boot(s); last check: ${JSON.stringify(r.outcome)}`);
    return r.bricked ? 1 : 0;
  }
  await dev.runForever();
  out(`${values.id}: running; Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
    exitWithNpx(resolve);
  });
  await dev.stopForever();
  return 0;
}

async function fleet(args: string[], out: Out): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      devices: { type: "string" },
      server: { type: "string" },
      token: { type: "string" },
      mqtt: { type: "string" },
      "no-mqtt": { type: "boolean" },
      mix: { type: "string" },
      seed: { type: "string" },
      prefix: { type: "string" },
      "image-size": { type: "string" },
      "poll-interval": { type: "string" },
      "status-every": { type: "string" },
      group: { type: "string" },
      "until-campaign-ends": { type: "boolean" },
      verbose: { type: "boolean" },
      cacert: { type: "string", multiple: true },
    },
  });
  if (!values.server) throw new UsageError("--server is required");
  const n = Number(values.devices ?? "10");
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new UsageError("--devices must be a positive integer");
  const server = values.server.replace(/\/+$/, "");
  const tlsCas = values.cacert ? readCas(values.cacert) : undefined;
  const fetch = pinnedFetch(tlsCas);
  const token = values.token ?? process.env.OTA_TOKEN ?? (await devToken(server, fetch));
  const size = parseSize(values["image-size"] ?? "64K");
  const started = Date.now();
  const f = await Fleet.start({
    devices: n,
    serverUrl: server,
    token,
    ...(tlsCas ? { tlsCas } : {}),
    ...(values["no-mqtt"] ? { mqttUrl: null } : values.mqtt ? { mqttUrl: values.mqtt } : {}),
    ...(values.mix ? { mix: parseMix(values.mix) } : {}),
    seed: Number(values.seed ?? "1"),
    ...(values.prefix ? { prefix: values.prefix } : {}),
    ...(values.group ? { group: values.group } : {}),
    factoryImage: buildAppImage({ version: "1.0.0", size }),
    pollIntervalMs: Number(values["poll-interval"] ?? "60") * 1000,
    ...(values.verbose ? { log: out } : {}),
  });
  const boards: Record<string, number> = {};
  for (const d of f.devices) boards[d.board] = (boards[d.board] ?? 0) + 1;
  out(`fleet: ${n} devices (${f.devices[0]!.id} … ${f.devices[n - 1]!.id}) up in ${((Date.now() - started) / 1000).toFixed(1)} s; boards ${fmt(boards)}; mqtt ${f.mqttUrl ?? "off"}; Ctrl-C to stop`);
  const every = Number(values["status-every"] ?? "5") * 1000;
  let ended: CampaignSummary | null = null;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      void newestCampaign(server, token, fetch).then((c) => {
        out(liveLine(f.versions(), f.phases(), f.downloadedBytes() / 1048576, c));
        if (values["until-campaign-ends"] && c !== "unknown" && c !== null && FINAL.includes(c.status)) {
          ended = c;
          stop();
        }
      });
    }, every);
    const stop = () => {
      clearInterval(timer);
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    exitWithNpx(stop);
  });
  await f.stop();
  out(`fleet stopped: versions ${fmt(f.versions())}`);
  return ended === null || (ended as CampaignSummary).status === "completed" ? 0 : 1;
}

const FINAL = ["completed", "failed", "cancelled"];

/** `npx ota-sim … &` then `kill $!` stops npx only and re-parents this process: follow npx out. */
function exitWithNpx(stop: () => void): void {
  if (process.env.npm_command !== "exec") return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) (clearInterval(timer), stop());
  }, 250);
  timer.unref();
}

function parseSize(text: string): number {
  const m = /^(\d+)([KM]?)$/i.exec(text.trim());
  if (!m) throw new Error(`bad size ${JSON.stringify(text)} (e.g. 65536, 64K, 1M)`);
  return Number(m[1]) * (m[2]?.toUpperCase() === "K" ? 1024 : m[2]?.toUpperCase() === "M" ? 1 << 20 : 1);
}

/** The stub's dev-token endpoint (an operator token for an hour). */
function readCas(files: string[]): string[] {
  if (files.length > 2) throw new UsageError("--cacert: pin one CA, or two while rotating");
  return files.map((file) => {
    if (!existsSync(file)) throw new UsageError(`--cacert ${file}: no such file`);
    const pem = readFileSync(file, "utf8");
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new UsageError(`--cacert ${file}: not a PEM certificate`);
    return pem;
  });
}

/** --client-cert and --client-key (PEM files), which go together and only over TLS (--cacert). */
function readClientCert(certFile: string | undefined, keyFile: string | undefined, cacert: string[] | undefined): { cert: string; key: string } | null {
  if (certFile === undefined && keyFile === undefined) return null;
  if (!certFile || !keyFile) throw new UsageError("--client-cert and --client-key go together");
  if (!cacert) throw new UsageError("--client-cert is presented over TLS: give the server's CA with --cacert");
  for (const file of [certFile, keyFile]) if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
  const cert = readFileSync(certFile, "utf8");
  const key = readFileSync(keyFile, "utf8");
  if (!cert.includes("-----BEGIN CERTIFICATE-----")) throw new UsageError(`--client-cert ${certFile}: not a PEM certificate`);
  if (!key.includes("PRIVATE KEY-----")) throw new UsageError(`--client-key ${keyFile}: not a PEM private key`);
  return { cert, key };
}

async function devToken(server: string, fetch: FetchLike): Promise<string> {
  const res = await fetch(server + ROUTES.devToken, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user_id: "ota-sim-fleet", email: "fleet@ota-sim.local", role: "operator", expires_in: 24 * 3600 }),
  }).catch((e: Error) => {
    throw new Error(`cannot reach ${server}: ${(e.cause as Error | undefined)?.message ?? e.message}`);
  });
  if (!res.ok) {
    throw new Error(`no --token and the server's dev-token endpoint answered ${res.status} (dev tokens are off unless the server runs with --dev-tokens); pass --token or set OTA_TOKEN, e.g. from \`ota-server api-key create --role operator\``);
  }
  return ((await res.json()) as { access_token: string }).access_token;
}

function loadKeys(keys: string[], flashPath: string): TrustedKey[] {
  const baked = `${flashPath}.keys.json`;
  const list: TrustedKey[] = keys.length > 0 ? keys.map((publicKey) => ({ publicKey })) : existsSync(baked) ? (JSON.parse(readFileSync(baked, "utf8")) as TrustedKey[]) : [];
  if (list.length === 0) throw new Error(`no trusted keys: pass --key (from GET /api/v1/keys) or provide ${baked}`);
  for (const k of list) {
    if (base64Decode(k.publicKey).length !== 32) throw new Error(`--key ${k.publicKey.slice(0, 16)}… is not a base64 32-byte ed25519 public key`);
  }
  return list;
}

/** A new device from the factory: v1.0.0 in ota_0, otadata blank. */
function factoryFlash(path: string, out: Out): NorFlash {
  const flash = createDeviceFlash({ path });
  const ota0 = findByName(loadPartitionTable(flash), "ota_0")!;
  programPartition(flash, ota0, buildAppImage({ version: "1.0.0" }));
  out(`created ${path} with v1.0.0 in ota_0`);
  return flash;
}
