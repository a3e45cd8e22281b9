// npm run bench:scale — available_updates_rps_vs_hello: requests per second of the device check route (GET
// /devices/{id}/available-updates, API-key auth, a signed manifest in every answer) against a fastify hello-world
// route registered on the same server, under the same autocannon load, in one run (on SQLite); then fleet_N_campaign_s
// across 2 replicas on PostgreSQL and Mosquitto (bench/fleet-scale.ts; --fleet-devices, default 10,000, 0 skips it;
// --database-url: the PostgreSQL server to use instead of a throwaway cluster); then failover_s: two replicas on a
// throwaway PostgreSQL (bench/scale-failover.ts; one line instead without PostgreSQL). Writes bench/scale.json and
// merges into bench/results.json.
import autocannon from "autocannon";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
import { fleetAtScale } from "./fleet-scale";
import { checkVsHelloFigures, combineRounds, failoverFigures, fleetFigures, parseScaleArgs, type RouteLoad, type ScaleArgs } from "./scale-figures";
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
  const figures: Figure[] = [];
  if (!args.skipRps) figures.push(...(await checkVsHello(args)));
  if (args.fleetDevices > 0) figures.push(...fleetFigures(await fleetAtScale({ devices: args.fleetDevices, databaseUrl: args.databaseUrl, cpuProfDir: process.env.SCALE_SERVER_PROF, deviceLogFile: process.env.SCALE_DEVICE_LOG })));
  const failover = await measureFailover(60, 20);
  if (typeof failover === "string") console.log(failover);
  else figures.push(...failoverFigures(failover));
  printTable(figures);
  // Merged by name: a run of one part (--skip-rps, --fleet-devices 0) keeps the other's figures.
  const scaleJson = join(here, "scale.json");
  const kept = existsSync(scaleJson) ? (JSON.parse(readFileSync(scaleJson, "utf8")) as Figure[]).filter((f) => !figures.some((g) => g.name === f.name)) : [];
  writeFileSync(scaleJson, JSON.stringify([...kept, ...figures], null, 2) + "\n");
  record(figures);
  console.log(`\nwritten to ${scaleJson}`);
  process.exit(0);
}
