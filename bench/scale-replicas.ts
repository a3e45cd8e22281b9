// Two ota-server processes on one PostgreSQL (own data dirs, one shared blob dir), an operator key, a firmware image
// and registered devices: the set-up of bench/scale-failover.ts and of the replica tests that need real processes.
import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { startServerChild } from "./server-child";

const BIN = new URL("../bin/ota-server.js", import.meta.url).pathname;
const MODEL = "FAILOVER-1";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Replica {
  name: string;
  url: string;
  proc: ChildProcess;
  /** Waits for the process to exit (after a kill) and stops sampling it. */
  stop(): Promise<void>;
}

export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms: number, every = 20): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`failover: ${what} not within ${ms} ms`);
    await sleep(every);
  }
}

async function startReplica(name: string, dir: string, env: NodeJS.ProcessEnv): Promise<Replica> {
  const dataDir = join(dir, name);
  const server = await startServerChild({
    dataDir, env,
    args: ["--no-mqtt", "--quiet", "--log-level", "info", "--log-dir", join(dataDir, "logs"), "--blob-dir", join(dir, "shared-blobs")],
  });
  return { name, url: server.url, proc: server.child, stop: () => server.stop() };
}

export async function isLeader(r: Replica): Promise<boolean> {
  const text = await (await fetch(`${r.url}/metrics`)).text();
  return /^ota_engine_leader 1$/m.test(text);
}

export async function call(r: Replica, auth: Record<string, string>, method: string, path: string, body?: unknown): Promise<any> {
  const form = body instanceof FormData;
  const res = await fetch(r.url + path, {
    method, headers: { ...auth, ...(body !== undefined && !form ? { "content-type": "application/json" } : {}) },
    body: form ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} on ${r.name}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}


export interface ReplicaPair {
  a: Replica;
  b: Replica;
  /** The operator's X-API-Key header. */
  op: Record<string, string>;
  firmwareId: string;
  /** Device id → API key, registered alternately through A and B. */
  keys: Map<string, string>;
  /** A connection of the test's own to the shared database. */
  db: pg.Client;
}

/** Starts A, waits until it leads, starts B; then a firmware image through A and `devices` devices. */
export async function withReplicas<T>(databaseUrl: string, devices: number, fn: (r: ReplicaPair) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "ota-replicas-"));
  const env: NodeJS.ProcessEnv = { ...process.env, OTA_DATABASE_URL: databaseUrl };
  delete env.OTA_JWT_SECRET; // the replicas must agree through the database
  const db = new pg.Client({ connectionString: databaseUrl });
  const procs: Replica[] = [];
  try {
    procs.push(await startReplica("replica-a", dir, env));
    await until("a leader", () => isLeader(procs[0]!), 5000);
    procs.push(await startReplica("replica-b", dir, env));
    await db.connect();
    const created = spawnSync(process.execPath, [BIN, "api-key", "create", "--role", "operator", "--name", "replicas", "--data-dir", join(dir, "cli")], { env, encoding: "utf8" });
    if (created.status !== 0) throw new Error(`api-key create: ${created.stderr}`);
    const op = { "x-api-key": (JSON.parse(created.stdout) as { api_key: string }).api_key };
    const [a, b] = procs as [Replica, Replica];
    const form = new FormData();
    form.append("metadata", JSON.stringify({ name: "replicas", version: "2.0.0", device_model: MODEL }));
    form.append("file", new Blob([new Uint8Array(4096).fill(7)]), "fw.bin");
    const fw = await call(a, op, "POST", "/api/v1/firmware", form);
    const keys = new Map<string, string>();
    for (let i = 0; i < devices; i++) {
      const id = `rp-${String(i).padStart(4, "0")}`;
      const r = await call(procs[i % 2]!, op, "POST", "/api/v1/devices", { device_id: id, device_model: MODEL, hardware_version: "1.0", current_version: "1.0.0" });
      keys.set(id, r.api_key);
    }
    return await fn({ a, b, op, firmwareId: fw.firmware_id, keys, db });
  } finally {
    for (const r of procs) r.proc.kill("SIGKILL");
    await Promise.all(procs.map((r) => r.stop()));
    await db.end().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
