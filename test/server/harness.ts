// Test harness: a real server on ephemeral ports, a temp data dir, a manual clock,
// and small HTTP/MQTT helpers. Logs are captured so tests can assert on them.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import mqtt, { type MqttClient } from "mqtt";
import pino from "pino";
import { ManualClock } from "../../server-stub/clock";
import { startOtaServer, type OtaServer, type ServerOptions } from "../../server-stub/server";
import { ROUTES, updateStatusPath } from "../../device/protocol/paths";
import { pinnedFetch, type FetchLike } from "../../host-sim/pinned-fetch";
import { testDatabase } from "../support/test-database";

export interface Harness {
  server: OtaServer;
  clock: ManualClock;
  dataDir: string;
  logs: string[];
  admin: string;
  /** The CA the server's certificate chains to, when it speaks TLS; `fetch` trusts it. */
  ca: string | null;
  fetch: FetchLike;
  restart(extra?: Partial<ServerOptions>): Promise<void>;
  close(): Promise<void>;
}

/** `ca`: the CA of `extra.tls`'s certificate, for the harness's own requests. */
export async function startHarness(extra: Partial<ServerOptions> = {}, reuse?: { dataDir: string; clock: ManualClock }, ca: string | null = null): Promise<Harness> {
  const dataDir = reuse?.dataDir ?? mkdtempSync(join(tmpdir(), "ota-test-"));
  const clock = reuse?.clock ?? new ManualClock();
  const database = await testDatabase(dataDir);
  const logs: string[] = [];
  const sink = new Writable({ write(chunk, _e, cb) { logs.push(String(chunk)); cb(); } });
  const boot = (opts: Partial<ServerOptions>) =>
    startOtaServer({ dataDir, port: 0, host: "127.0.0.1", mqttPort: 0, authPort: 0, devToken: true, clock, logger: pino({ level: "info" }, sink), databaseUrl: database.databaseUrl, ...extra, ...opts });
  let server: OtaServer;
  try {
    server = await boot({});
  } catch (e) {
    if (!reuse) rmSync(dataDir, { recursive: true, force: true });
    await database.dispose();
    throw e;
  }
  const h: Harness = {
    server,
    clock, dataDir, logs, admin: "", ca, fetch: pinnedFetch(ca ? [ca] : null),
    async restart(opts = {}) {
      await h.server.close();
      h.server = await boot(opts);
    },
    async close() {
      await h.server.close();
      rmSync(dataDir, { recursive: true, force: true });
      await database.dispose();
    },
  };
  if (h.server.ctx.config.devTokenEnabled) h.admin = (await devToken(h, { user_id: "ota_admin", role: "admin", expires_in: 30 * 24 * 3600 })).access_token;
  return h;
}

export interface Res<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface Auth {
  token?: string;
  apiKey?: string;
}

export async function api<T = any>(h: Harness, method: string, path: string, opts: Auth & { body?: unknown; headers?: Record<string, string> } = {}): Promise<Res<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.apiKey) headers["x-api-key"] = opts.apiKey;
  let body: FormData | string | undefined;
  if (opts.body instanceof FormData) body = opts.body;
  else if (opts.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  const res = await h.fetch(h.server.url + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export const asAdmin = (h: Harness) => ({ token: h.admin });

export async function devToken(h: Harness, body: Record<string, unknown>, base?: string): Promise<any> {
  const res = await h.fetch((base ?? h.server.url) + ROUTES.devToken, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`dev-token ${res.status}: ${await res.text()}`);
  return res.json();
}

export async function registerDevice(h: Harness, device_id: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await api(h, "POST", ROUTES.devices, { ...asAdmin(h), body: { device_id, device_model: "IOT-2024", hardware_version: "1.0", current_version: "1.0.0", ...extra } });
  if (r.status !== 201) throw new Error(`register ${device_id}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.api_key as string;
}

export function firmwareForm(meta: Record<string, unknown>, bytes: Uint8Array, metaFirst = true): FormData {
  const f = new FormData();
  const file = new Blob([bytes], { type: "application/octet-stream" });
  if (metaFirst) f.append("metadata", JSON.stringify(meta));
  f.append("file", file, "firmware.bin");
  if (!metaFirst) f.append("metadata", JSON.stringify(meta));
  return f;
}

export async function uploadFirmware(h: Harness, meta: Record<string, unknown>, bytes: Uint8Array): Promise<any> {
  const r = await api(h, "POST", ROUTES.firmwareList, { ...asAdmin(h), body: firmwareForm({ device_model: "IOT-2024", name: "fw", ...meta }, bytes) });
  if (r.status !== 201) throw new Error(`upload: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export function randomBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  if (out[0] === 0xe9) out[0] = 0; // keep "raw" images from looking like ESP images
  return out;
}

/** Reports a sequence of statuses for an update as the device would. */
export async function report(h: Harness, apiKey: string, updateId: string, ...steps: Array<string | Record<string, unknown>>): Promise<Res[]> {
  const out: Res[] = [];
  for (const s of steps) out.push(await api(h, "POST", updateStatusPath(updateId), { apiKey, body: typeof s === "string" ? { status: s } : s }));
  return out;
}

export async function connectMqtt(h: Harness, username: string, password: string): Promise<MqttClient> {
  return mqtt.connectAsync(h.server.mqttUrl!, { username, password, reconnectPeriod: 0, connectTimeout: 5000, ...(h.ca ? { ca: [h.ca] } : {}) });
}

/** Resolves with the next message on a topic, or rejects after ms. */
export function nextMessage(client: MqttClient, topic: string, ms = 3000): Promise<any> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no message on ${topic} within ${ms} ms`)), ms);
    const onMsg = (tp: string, payload: Buffer) => {
      if (tp !== topic) return;
      clearTimeout(t);
      client.off("message", onMsg);
      resolve(JSON.parse(payload.toString()));
    };
    client.on("message", onMsg);
  });
}

/** Polls until fn returns truthy (for effects that cross an MQTT round trip). */
export async function eventually<T>(fn: () => T | Promise<T>, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
