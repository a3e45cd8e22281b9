// End-to-end fixtures: the real server stub on ephemeral ports, and simulated devices running the real agent
// (on Node or on XS) over real HTTP and MQTT, with their flashes inspected afterwards.
import http from "node:http";
import https from "node:https";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AgentConfig, TrustedKey } from "../../device/core/config";
import type { SignatureAlg } from "../../device/protocol/manifest";
import { createDeviceFlash, programPartition } from "../../host-sim/device-flash";
import type { AgentRuntime, SimDeviceOptions } from "../../host-sim/device/sim-device";
import { SimDevice } from "../../host-sim/device/sim-device";
import type { Behaviour } from "../../esp-image/app-image";
import { buildAppImage } from "../../esp-image/app-image";
import { EspOta, loadPartitionTable } from "../../host-sim/esp/esp-ota";
import { Otadata, stateName } from "../../host-sim/esp/otadata";
import type { Partition } from "../../host-sim/esp/partition-table";
import { findByName, parsePartitionCsv } from "../../host-sim/esp/partition-table";
import type { NorFlash } from "../../host-sim/flash/nor-flash";
import { ManualClock } from "../../server-stub/clock";
import type { ServerOptions } from "../../server-stub/server";
import type { Harness } from "../server/harness";
import { api, asAdmin, registerDevice, startHarness, uploadFirmware } from "../server/harness";
import { deviceUpdatePath, ROUTES, updatePath } from "../../device/protocol/paths";
import { testTls } from "./tls";

export const MODEL = "ESP32-DEVKIT";

/** 16 MB flash with 5 MB slots, so 4 MiB images fit (memory and throughput figures). */
export const BIG_SLOTS_CSV = `nvs, data, nvs, 0x9000, 0x4000,
otadata, data, ota, 0xd000, 0x2000,
phy_init, data, phy, 0xf000, 0x1000,
ota_0, app, ota_0, 0x10000, 0x500000,
ota_1, app, ota_1, 0x510000, 0x500000,
agent, data, undefined, 0xa10000, 0x10000,
`;

/** Fast timings for tests; every figure is still exercised. */
export const TEST_AGENT: Partial<AgentConfig> = {
  retryBaseMs: 5,
  selfTestDeadlineMs: 2000,
  stallTimeoutMs: 1000,
  requestTimeoutMs: 3000,
  maxDownloadAttempts: 12,
  // Every 5 % step reports, however fast the simulated link: the tests and the XS memory figures see each report.
  progressMinIntervalMs: 0,
};

export interface World {
  h: Harness;
  keys: TrustedKey[];
  runtime: AgentRuntime;
  /** Devices talk to the server through this proxy (download URLs point at it too). */
  proxy: Proxy;
  /** The CA devices pin (null in a plain world). */
  ca: string | null;
  close(): Promise<void>;
}

/** The server and the proxy in front of it speak TLS (HTTPS and MQTTS) with a private CA that every device pins,
 * unless `{ tls: false }`; other fields are server options (e.g. `deltas: false`: full images only). */
export async function startWorld(runtime: AgentRuntime, opts: Omit<Partial<ServerOptions>, "tls"> & { tls?: boolean } = {}): Promise<World> {
  const { tls: useTls, ...server } = opts;
  const tls = useTls === false ? null : testTls();
  const ca = tls?.ca.cert ?? null;
  const p = await proxy(tls ? { ...tls.server, ca: tls.ca.cert } : null);
  const h = await startHarness({ ...server, publicUrl: p.url, tls: tls?.server ?? null }, { dataDir: mkdtempSync(join(tmpdir(), "ota-e2e-")), clock: new ManualClock(Date.now()) }, ca);
  p.target = h.server.url;
  const keys = trustedKeysOf((await api(h, "GET", ROUTES.keys, asAdmin(h))).body.keys);
  return { h, keys, runtime, proxy: p, ca, close: async () => (await p.close(), await h.close()) };
}

/** GET /api/v1/keys as a device's trusted keys, each with its algorithm (ed25519 and ECDSA P-256). */
export function trustedKeysOf(keys: { key_id: string; public_key: string; algorithm: SignatureAlg }[]): TrustedKey[] {
  return keys.map((k) => (k.algorithm === "ed25519" ? { keyId: k.key_id, publicKey: k.public_key } : { keyId: k.key_id, publicKey: k.public_key, alg: k.algorithm }));
}

const images = new Map<string, Uint8Array>();
export function image(version: string, behaviour: Behaviour = "healthy", size = 96 * 1024): Uint8Array {
  const key = `${version}/${behaviour}/${size}`;
  if (!images.has(key)) images.set(key, buildAppImage({ version, behaviour, size }));
  return images.get(key)!;
}

export async function upload(w: World, version: string, opts: { behaviour?: Behaviour; size?: number; model?: string; bytes?: Uint8Array } = {}): Promise<string> {
  const bytes = opts.bytes ?? image(version, opts.behaviour, opts.size);
  const fw = await uploadFirmware(w.h, { version, device_model: opts.model ?? MODEL, name: `fw ${version}` }, bytes);
  return fw.firmware_id as string;
}

export async function assign(w: World, deviceId: string, firmwareId: string, extra: Record<string, unknown> = {}) {
  const r = await api(w.h, "POST", deviceUpdatePath(deviceId), { ...asAdmin(w.h), body: { firmware_id: firmwareId, ...extra } });
  if (r.status >= 300) throw new Error(`assign ${firmwareId} to ${deviceId}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as { update_id: string };
}

export async function updateRecord(w: World, updateId: string) {
  return (await api(w.h, "GET", updatePath(updateId), asAdmin(w.h))).body;
}

export interface DeviceOptions {
  flash?: NorFlash;
  /** What the server is told at registration (it may disagree with the device: a misregistered board). */
  register?: Record<string, unknown>;
  partitionsCsv?: string;
  flashSize?: number;
  keys?: TrustedKey[];
  extra?: Partial<SimDeviceOptions>;
}

/** A registered device, factory-flashed with v1.0.0 (the same bytes as the uploaded 1.0.0), booted once. */
export async function device(w: World, id: string, opts: DeviceOptions = {}) {
  const apiKey = await registerDevice(w.h, id, { device_model: MODEL, hardware_version: "1.0", current_version: "1.0.0", ...opts.register });
  const partitions = opts.partitionsCsv ? parsePartitionCsv(opts.partitionsCsv, { flashSize: opts.flashSize ?? 4 << 20 }) : undefined;
  const flash = opts.flash ?? createDeviceFlash({ ...(partitions ? { partitions } : {}), ...(opts.flashSize ? { size: opts.flashSize } : {}) });
  programPartition(flash, findByName(loadPartitionTable(flash), "ota_0")!, image("1.0.0"));
  const dev = new SimDevice({
    id,
    flash,
    serverUrl: w.proxy.url,
    apiKey,
    trustedKeys: opts.keys ?? w.keys,
    ...(w.ca ? { tlsCas: [w.ca] } : {}),
    runtime: w.runtime,
    agent: TEST_AGENT,
    ...opts.extra,
  });
  return { dev, apiKey };
}

/** What the flash says: the slot the bootloader picks, its version, and both otadata entries. */
export function inspect(flash: NorFlash) {
  const ota = new EspOta(flash, { running: null });
  const od = new Otadata(flash, ota.otadata!.partition);
  const entries = od.read().map((e) => (e.seq === 0xffffffff ? "blank" : `seq${e.seq} ${stateName(e.state)}`));
  const boot = ota.getBootPartition();
  return {
    bootSlot: boot?.name ?? null,
    bootState: boot ? safeState(ota, boot) : null,
    otadata: entries,
    versions: Object.fromEntries(ota.otaSlots.map((p) => [p.name, safeDesc(ota, p)])),
  };
}

function safeState(ota: EspOta, p: Partition) {
  try {
    return stateName(ota.getStatePartition(p));
  } catch {
    return null;
  }
}

function safeDesc(ota: EspOta, p: Partition) {
  try {
    return ota.getPartitionDescription(p).version;
  } catch {
    return null;
  }
}

export interface Proxy {
  url: string;
  target: string;
  /** Answer available-updates with this body instead of asking the server (a replay), when set. */
  availableUpdates: ((deviceId: string) => string | null) | null;
  /** Every available-updates body the server sent each device (not the replays), oldest first: what a
   * recorder on the path keeps for a later replay. */
  recorded: Map<string, string[]>;
  /** Strip Range from requests: the server then answers 200 with the whole file. */
  ignoreRange: boolean;
  /** Cut every request in flight, as a server crash would (a graceful restart lets them finish). */
  dropConnections(): void;
  /** How response bodies are delimited on the way to devices: as the server sent them (default), chunked (no
   * Content-Length), or by closing the connection (HTTP/1.1 without Content-Length or chunking, RFC 9112 §6.3). */
  framing: "server" | "chunked" | "close";
  /** Throttle responses passing through (bytes per second); unset = full speed. */
  bytesPerSecond?: number;
  close(): Promise<void>;
}

/** An HTTP(S) proxy in front of the server that can rewrite what devices see (replays, ignored Range...). With `tls`
 * it serves that certificate and reaches the server over TLS, trusting `tls.ca`. */
export async function proxy(tls: { cert: string; key: string; ca: string } | null = null): Promise<Proxy> {
  const p = { target: "", availableUpdates: null, ignoreRange: false, framing: "server", recorded: new Map() } as unknown as Proxy;
  const inFlight = new Set<http.ClientRequest>();
  p.dropConnections = () => {
    for (const up of inFlight) up.destroy(new Error("server went away"));
  };
  const handler: http.RequestListener = (req, res) => {
    const m = /\/devices\/([^/]+)\/available-updates/.exec(req.url ?? "");
    const replay = m && p.availableUpdates ? p.availableUpdates(decodeURIComponent(m[1]!)) : null;
    if (replay !== null) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(replay);
      return;
    }
    const t = new URL(p.target);
    const headers = { ...req.headers, host: t.host };
    if (p.ignoreRange) delete headers.range;
    const upstream = t.protocol === "https:" ? https.request : http.request;
    const up = upstream({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers, ...(tls ? { ca: [tls.ca] } : {}) }, (r) => {
      if (p.framing !== "server") {
        reframe(r, res, p.framing);
        return;
      }
      res.writeHead(r.statusCode ?? 502, r.headers);
      if (m && r.statusCode === 200) record(p.recorded, decodeURIComponent(m[1]!), r);
      const bps = p.bytesPerSecond;
      if (!bps) return void r.pipe(res);
      // A slow link on the wire itself, so a transfer is really in flight when the server goes away.
      r.on("data", (chunk: Buffer) => {
        r.pause();
        res.write(chunk);
        setTimeout(() => r.resume(), (chunk.length / bps) * 1000);
      });
      r.on("end", () => res.end());
    });
    inFlight.add(up);
    up.on("close", () => inFlight.delete(up));
    up.on("error", () => res.destroy());
    req.pipe(up);
  };
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  p.url = `${tls ? "https" : "http"}://127.0.0.1:${(server.address() as { port: number }).port}`;
  p.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return p;
}

/** Sends a response on without its Content-Length: chunked (Node's own framing then), or raw on the socket,
 * delimited by the close that follows it. */
function reframe(r: http.IncomingMessage, res: http.ServerResponse, framing: "chunked" | "close") {
  const headers = { ...r.headers };
  delete headers["content-length"];
  delete headers["transfer-encoding"];
  if (framing === "chunked") {
    res.writeHead(r.statusCode ?? 502, headers);
    r.pipe(res);
    return;
  }
  const socket = res.socket!;
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`);
  socket.write(`HTTP/1.1 ${r.statusCode} ${r.statusMessage}\r\n${[...lines.filter((l) => !/^connection:/i.test(l)), "connection: close"].join("\r\n")}\r\n\r\n`);
  r.on("data", (chunk: Buffer) => socket.write(chunk));
  r.on("end", () => socket.end());
}

/** Keeps a copy of a response body as it passes (the proxy still pipes it on unchanged). */
function record(into: Map<string, string[]>, deviceId: string, r: http.IncomingMessage) {
  const chunks: Buffer[] = [];
  r.on("data", (c: Buffer) => chunks.push(c));
  r.on("end", () => into.set(deviceId, [...(into.get(deviceId) ?? []), Buffer.concat(chunks).toString("utf8")]));
}

/** The last body the server sent `deviceId` that offered update `updateId` (what a replay would resend). */
export function recordedOffer(p: Proxy, deviceId: string, updateId: string): string {
  const body = (p.recorded.get(deviceId) ?? []).filter((b) => (JSON.parse(b) as { manifest?: { update_id?: string } }).manifest?.update_id === updateId).pop();
  if (!body) throw new Error(`the proxy recorded no offer of ${updateId} to ${deviceId}`);
  return body;
}
