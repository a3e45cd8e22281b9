// npm run bench:scale — available_updates_rps_vs_hello: requests per second of the device check route (GET
// /devices/{id}/available-updates, API-key auth, a signed manifest in every answer) against a fastify hello-world
// route registered on the same server, under the same autocannon load, in one run. failover_s: two replicas on a
// throwaway PostgreSQL (bench/scale-failover.ts; one line instead without PostgreSQL). The other issue-16 figure prints
// one line saying it is not measured yet. Writes bench/scale.json and merges into bench/results.json.
import autocannon from "autocannon";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { Operator } from "../demo/operator";
import { buildAppImage } from "../esp-image/app-image";
import { availableUpdatesPath, ROUTES } from "../device/protocol/paths";
import { startOtaServer, type OtaServer } from "../server-stub/server";
import type { Figure } from "./run";
import { printTable, record } from "./run";
import { checkVsHelloFigures, combineRounds, failoverFigures, parseScaleArgs, PENDING_FIGURES, type RouteLoad, type ScaleArgs } from "./scale-figures";
import { measureFailover } from "./scale-failover";

const here = dirname(fileURLToPath(import.meta.url));
const MODEL = "ESP32-DEVKIT";
const HELLO_PATH = "/bench/hello";

interface Device {
  id: string;
  apiKey: string;
}

/** Registers `n` devices (each gets its API key), uploads an image and runs an immediate campaign to all of them. */
async function fleetWithPendingUpdates(server: OtaServer, n: number): Promise<Device[]> {
  const op = await Operator.login(server.url, "admin");
  const devices: Device[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let i = next++; i < n; i = next++) {
      const id = `scale-${String(i).padStart(6, "0")}`;
      const r = await op.call<{ api_key: string }>("POST", ROUTES.devices, { device_id: id, device_model: MODEL, hardware_version: "1.0", current_version: "1.0.0" });
      devices.push({ id, apiKey: r.api_key });
    }
  }));
  const fw = await op.upload({ version: "1.1.0", device_model: MODEL, name: "scale 1.1.0" }, buildAppImage({ version: "1.1.0", size: 256 * 1024 }));
  const c = await op.createCampaign({ name: "scale", firmware_id: fw.firmware_id, deployment_strategy: "immediate", target_devices: devices.map((d) => d.id) });
  await op.start(c.campaign_id);
  for (let i = 0; ; i++) {
    const stats = await op.campaignStats(c.campaign_id);
    if (stats.total_devices === n && stats.stages.every((s) => s.pending === 0)) break;
    if (i > 600) throw new Error(`the campaign did not assign every device an update: ${JSON.stringify(stats)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return devices;
}

/** One device's check must answer a signed manifest; else the load would measure something else. */
async function assertSignedManifest(server: OtaServer, d: Device) {
  const res = await fetch(server.url + availableUpdatesPath(d.id, { current_version: "1.0.0" }), { headers: { "x-api-key": d.apiKey } });
  const body = (await res.json()) as { update_available?: boolean; signatures?: unknown[] };
  if (res.status !== 200 || body.update_available !== true || !body.signatures?.length) throw new Error(`the check route did not offer a signed manifest: ${res.status} ${JSON.stringify(body)}`);
}

/** autocannon in a worker thread (the server keeps this thread, and so a core, to itself). */
async function load(url: string, requests: autocannon.Request[], connections: number, durationS: number): Promise<RouteLoad> {
  const r = await autocannon({ url, requests, connections, duration: durationS, workers: 1 });
  return { rps: r.requests.total / r.duration, seconds: r.duration, p50Ms: r.latency.p50, p99Ms: r.latency.p99, requests: r.requests.total, non2xx: r.non2xx, errors: r.errors + r.timeouts };
}

export async function checkVsHello(args: ScaleArgs, log: (s: string) => void = console.log): Promise<Figure[]> {
  const dataDir = mkdtempSync(join(tmpdir(), "ota-bench-scale-"));
  // Rate limits off: the load is many devices' worth from one address. Log level warn: no per-request lines on either route.
  const server = await startOtaServer({
    dataDir, port: 0, host: "127.0.0.1", mqttPort: args.mqttUrl ? undefined : 0, mqttUrl: args.mqttUrl, authPort: null, devToken: true, rateLimits: false,
    logger: pino({ level: "warn" }),
    extraRoutes: (app) => app.get(HELLO_PATH, { config: { public: true } }, async () => ({ hello: "world" })),
  });
  try {
    const t0 = performance.now();
    const devices = await fleetWithPendingUpdates(server, args.devices);
    log(`scale: ${args.devices} devices registered, each with a pending update, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await assertSignedManifest(server, devices[0]!);
    const checks = devices.map((d) => ({ method: "GET" as const, path: availableUpdatesPath(d.id, { current_version: "1.0.0" }), headers: { "x-api-key": d.apiKey } }));
    const hellos = [{ method: "GET" as const, path: HELLO_PATH }];
    if (args.warmupS > 0) {
      await load(server.url, checks, args.connections, args.warmupS);
      await load(server.url, hellos, args.connections, args.warmupS);
    }
    const roundS = args.durationS / args.rounds;
    const checkRounds: RouteLoad[] = [];
    const helloRounds: RouteLoad[] = [];
    for (let r = 0; r < args.rounds; r++) {
      checkRounds.push(await load(server.url, checks, args.connections, roundS));
      helloRounds.push(await load(server.url, hellos, args.connections, roundS));
    }
    const check = combineRounds(checkRounds);
    const hello = combineRounds(helloRounds);
    log(`check route: ${check.rps.toFixed(0)} req/s, p50 ${check.p50Ms} ms, p99 ${check.p99Ms} ms; hello: ${hello.rps.toFixed(0)} req/s, p99 ${hello.p99Ms} ms`);
    return checkVsHelloFigures(check, hello, args);
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let args: ScaleArgs;
  try {
    args = parseScaleArgs(process.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
  if (args.databaseUrl) {
    console.error("--database-url: the PostgreSQL backend is not built yet (issue 16); run without it to use the embedded SQLite");
    process.exit(2);
  }
  const figures = await checkVsHello(args);
  for (const line of PENDING_FIGURES) console.log(line);
  const failover = await measureFailover(60, 20);
  if (typeof failover === "string") console.log(failover);
  else figures.push(...failoverFigures(failover));
  printTable(figures);
  writeFileSync(join(here, "scale.json"), JSON.stringify(figures, null, 2) + "\n");
  record(figures);
  console.log(`\nwritten to ${join(here, "scale.json")}`);
  process.exit(0);
}
