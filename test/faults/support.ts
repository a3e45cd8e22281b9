// Shared pieces of the reliability harness: the mode (bounded in `npm test`, full with `npm run test:faults`),
// a small update server of our own (signed envelopes from a key the device trusts, images served as we
// choose, status reports recorded per credential) and factory-flashed base devices to fork.
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import nacl from "tweetnacl";
import type { AgentConfig, TrustedKey } from "../../device/core/config";
import type { UpdateManifest } from "../../device/protocol/manifest";
import { manifestSigningBytes } from "../../device/protocol/manifest";
import { createDeviceFlash, programPartition } from "../../host-sim/device-flash";
import { SimDevice, seededRandom } from "../../host-sim/device/sim-device";
import type { SimDeviceOptions } from "../../host-sim/device/sim-device";
import type { Behaviour } from "../../esp-image/app-image";
import { buildAppImage } from "../../esp-image/app-image";
import { runBootloader } from "../../host-sim/esp/bootloader";
import { EspOta, loadPartitionTable } from "../../host-sim/esp/esp-ota";
import { activeOtadata, Otadata, slotOfSeq } from "../../host-sim/esp/otadata";
import type { Partition } from "../../host-sim/esp/partition-table";
import { findByName } from "../../host-sim/esp/partition-table";
import { NorFlash } from "../../host-sim/flash/nor-flash";
import type { NorFlashOptions } from "../../host-sim/flash/nor-flash";

/** FAULTS=full runs every case; otherwise the bounded CI sample. */
export const FULL = process.env.FAULTS === "full";
export const MODE = FULL ? "full" : "bounded";

export { seededRandom };

/** Fast agent timings for the harness; every mechanism is still exercised. */
export const FAST_AGENT: Partial<AgentConfig> = {
  retryBaseMs: 2,
  selfTestDeadlineMs: 2000,
  stallTimeoutMs: 300,
  requestTimeoutMs: 2000,
  maxDownloadAttempts: 6,
};

export const DEVICE_ID = "fault-dev-1";
export const MODEL = "ESP32-DEVKIT";

const images = new Map<string, Uint8Array>();
export function appImage(version: string, behaviour: Behaviour = "healthy", size = 64 * 1024, extra: { secureVersion?: number; chipId?: number } = {}): Uint8Array {
  const key = `${version}/${behaviour}/${size}/${extra.secureVersion ?? 0}/${extra.chipId ?? 0}`;
  if (!images.has(key)) images.set(key, buildAppImage({ version, behaviour, size, ...extra }));
  return images.get(key)!;
}

export const sha256Hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

// ---- signing ----

export interface Signer {
  trusted: TrustedKey;
  keyId: string;
  sign(manifest: Record<string, unknown>, extra?: Record<string, unknown>): Record<string, unknown>;
}

/** An ed25519 key of our own; the devices of the harness trust it. */
export function signer(seedByte = 7, keyId = "harness-key"): Signer {
  const kp = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(seedByte));
  const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
  return {
    keyId,
    trusted: { keyId, publicKey: b64(kp.publicKey) },
    sign(manifest, extra = {}) {
      const signature = b64(nacl.sign.detached(manifestSigningBytes(manifest as unknown as UpdateManifest), kp.secretKey));
      return { update_available: true, manifest, signature, key_id: keyId, signature_alg: "ed25519", ...extra };
    },
  };
}

let updateCounter = 0;
/** A well-formed manifest for `bytes`, served by `server` under `name`. */
export function manifestFor(server: UpdateServer, name: string, bytes: Uint8Array, version: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Date.now();
  return {
    manifest_version: 1,
    update_id: `upd-${++updateCounter}`,
    device_id: DEVICE_ID,
    firmware_id: `fw-${name}`,
    version,
    size: bytes.length,
    sha256: sha256Hex(bytes),
    device_model: MODEL,
    min_hardware_version: null,
    max_hardware_version: null,
    chip_id: 0,
    secure_version: 0,
    download_url: `${server.url}/fw/${name}`,
    issued_at: new Date(now - 60_000).toISOString(),
    expires_at: new Date(now + 3600_000).toISOString(),
    rollback: false,
    mandatory: false,
    priority: "normal",
    pre_update_commands: [],
    post_update_commands: [],
    ...over,
  };
}

// ---- our own update server ----

export interface Scenario {
  /** Body of available-updates (a string as is; an object is JSON-encoded); absent: no update. */
  envelope?: string | Record<string, unknown> | null;
  /** Replaces the normal download handler. */
  download?: (req: http.IncomingMessage, res: http.ServerResponse, bytes: Uint8Array | undefined) => void;
}

export interface Report {
  updateId: string;
  body: { status?: string; error_code?: string; [k: string]: unknown };
}

/** A minimal OTA server: each credential (X-API-Key) gets its own scenario and its own report log, so one
 * server serves many independent runs of the same device id. */
export class UpdateServer {
  url = "";
  readonly images = new Map<string, Uint8Array>();
  readonly scenarios = new Map<string, Scenario>();
  readonly reports = new Map<string, Report[]>();
  readonly served = new Map<string, number>();
  private readonly finished = new Set<string>();
  private server: http.Server;

  private constructor() {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  static async start(): Promise<UpdateServer> {
    const s = new UpdateServer();
    await new Promise<void>((r) => s.server.listen(0, "127.0.0.1", r));
    s.url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
    return s;
  }

  reportsOf(key: string): Report[] {
    return this.reports.get(key) ?? [];
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const key = String(req.headers["x-api-key"] ?? "");
    const scenario = this.scenarios.get(key) ?? {};
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "GET" && /^\/api\/v1\/devices\/[^/]+\/available-updates$/.test(url.pathname)) {
      let env = scenario.envelope;
      const offered = env && typeof env === "object" ? (env.manifest as { update_id?: unknown } | undefined)?.update_id : undefined;
      if (typeof offered === "string" && this.finished.has(`${key}\0${offered}`)) env = null;
      const body = env === undefined || env === null ? '{"update_available":false}' : typeof env === "string" ? env : JSON.stringify(env);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(body);
      return;
    }
    const st = /^\/api\/v1\/updates\/([^/]+)\/status$/.exec(url.pathname);
    if (req.method === "POST" && st) {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        let body: Report["body"] = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          /* recorded as empty */
        }
        const list = this.reports.get(key) ?? [];
        list.push({ updateId: decodeURIComponent(st[1]!), body });
        this.reports.set(key, list);
        // As the real server does: a finished update is no longer offered.
        if (["completed", "failed", "rolled_back"].includes(String(body.status))) this.finished.add(`${key}\0${decodeURIComponent(st[1]!)}`);
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      });
      return;
    }
    const fw = /^\/fw\/([^/]+)$/.exec(url.pathname);
    if (req.method === "GET" && fw) {
      const bytes = this.images.get(fw[1]!);
      if (scenario.download) return scenario.download(req, res, bytes);
      if (!bytes) {
        res.writeHead(404).end();
        return;
      }
      serveRange(req, res, bytes, (n) => this.served.set(key, (this.served.get(key) ?? 0) + n));
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end('{"error":{"code":"NOT_FOUND","message":"no route"}}');
  }
}

/** 200 with the whole body, or 206 for `Range: bytes=N-`. */
export function serveRange(req: http.IncomingMessage, res: http.ServerResponse, bytes: Uint8Array, count?: (n: number) => void) {
  const m = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ""));
  const start = m ? Number(m[1]) : 0;
  if (start >= bytes.length) {
    res.writeHead(416, { "content-range": `bytes */${bytes.length}` }).end();
    return;
  }
  const body = bytes.subarray(start);
  const headers: Record<string, string> = { "content-type": "application/octet-stream", "content-length": String(body.length), "accept-ranges": "bytes" };
  if (m) headers["content-range"] = `bytes ${start}-${bytes.length - 1}/${bytes.length}`;
  res.writeHead(m ? 206 : 200, headers);
  count?.(body.length);
  res.end(Buffer.from(body));
}

// ---- devices ----

/** A device flash with v1.0.0 factory-programmed into ota_0, booted once (otadata and journal settled). */
export async function baseFlash(server: UpdateServer, keys: TrustedKey[], old = appImage("1.0.0")): Promise<NorFlash> {
  const flash = createDeviceFlash();
  programPartition(flash, partitionOf(flash, "ota_0"), old);
  const dev = new SimDevice({ id: DEVICE_ID, flash, serverUrl: server.url, apiKey: "base", trustedKeys: keys, agent: FAST_AGENT });
  const r = await dev.powerOn();
  if (r.kind !== "running") throw new Error(`base device did not boot: ${r.kind}`);
  await dev.powerOff();
  return flash;
}

export function partitionOf(flash: NorFlash, name: string): Partition {
  const p = findByName(loadPartitionTable(flash), name);
  if (!p) throw new Error(`no partition ${name}`);
  return p;
}

/** A device on a fork of `base`; `apiKey` selects its scenario on the UpdateServer. */
export function forkDevice(base: NorFlash, server: UpdateServer, keys: TrustedKey[], apiKey: string, opts: { flash?: NorFlashOptions; extra?: Partial<SimDeviceOptions> } = {}) {
  const flash = NorFlash.memoryCopy(base, opts.flash);
  const dev = new SimDevice({ id: DEVICE_ID, flash, serverUrl: server.url, apiKey, trustedKeys: keys, agent: FAST_AGENT, ...opts.extra });
  return { dev, flash };
}

export interface FlashVerdict {
  bricked: boolean;
  slot: string | null;
  version: string | null;
  /** The active otadata entry exists and names the slot that boots (no fallback scan needed). */
  otadataAccepted: boolean;
  log: string[];
}

/** What ESP-IDF's bootloader makes of this flash (on a copy): the verified image it boots, and whether
 * otadata has a valid active entry pointing at that very slot. */
export function judgeFlash(flash: NorFlash): FlashVerdict {
  const boot = runBootloader(flash, { dryRun: true });
  if (!boot.partition) return { bricked: true, slot: null, version: null, otadataAccepted: false, log: boot.log };
  const ota = new EspOta(flash, { running: null });
  // The dry-run boot may have moved PENDING_VERIFY to ABORTED; judge the state it leaves.
  const copy = NorFlash.memoryCopy(flash);
  runBootloader(copy);
  const entries = new Otadata(copy, ota.otadata!.partition).read();
  const a = activeOtadata(entries);
  const slots = ota.otaSlots;
  const accepted = a !== -1 && slots[slotOfSeq(entries[a]!.seq, slots.length)]?.name === boot.partition.name;
  return { bricked: false, slot: boot.partition.name, version: boot.image?.appDesc?.version ?? null, otadataAccepted: accepted, log: boot.log };
}

/** Bytes of a partition, for "untouched" checks. */
export function partitionBytes(flash: NorFlash, name: string): string {
  const p = partitionOf(flash, name);
  return sha256Hex(flash.read(p.offset, p.size));
}

/** Prints a harness count line (visible in vitest output and CI logs). */
export function printCounts(line: string) {
  process.stdout.write(`[faults:${MODE}] ${line}\n`);
}
