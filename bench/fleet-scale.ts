// fleet_N_campaign_s (npm run bench:scale -- --fleet-devices N): N simulated devices (one process, as bench/fleet.ts)
// through a staged campaign of a 256 KiB image, served by 2 ota-server replicas (child processes) on one PostgreSQL
// database and one Mosquitto with dynamic security, the devices' HTTP through a round-robin TCP balancer (its own
// process). Set-up: a fresh database (a throwaway cluster, or a new database on --database-url's server), devices
// registered through one replica, their broker accounts written as the server's provisioning leaves them
// (bench/broker-accounts.ts), then broker, replicas, balancer and fleet.
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { Operator } from "../demo/operator";
import { ROUTES } from "../device/protocol/paths";
import { buildAppImage } from "../esp-image/app-image";
import { Fleet, fleetDeviceIds, pool } from "../host-sim/fleet/fleet";
import { openPgDb } from "../server-stub/db";
import { startMosquitto } from "../test/server/mosquitto";
import { startPgCluster, pgServerAt, type PgServer } from "../test/support/pg-cluster";
import { spawnBalancer } from "./balancer";
import { addDevicesToDynsecFile, confirmBrokerAccounts, type DeviceKey } from "./broker-accounts";
import { cpuSeconds, peakRssSampler } from "./proc-stats";
import type { FleetRun } from "./scale-figures";
import { freePort, startServerChild, type ServerChild } from "./server-child";

const MODEL = "ESP32-DEVKIT";
const GROUP = "scale-fleet";
const REPLICAS = 2;
/** A campaign still running after this is cut short and reported as such (not met). */
const CAMPAIGN_LIMIT_S = 900;

export interface FleetScaleOptions {
  devices: number;
  /** A PostgreSQL server to create the bench's database on; null: a throwaway cluster of our own. */
  databaseUrl: string | null;
  /** V8 CPU profiles of the replicas go here (--cpu-prof), written when they stop. */
  cpuProfDir?: string;
  /** Devices' warn and error log lines are appended to this file (default: dropped). */
  deviceLogFile?: string;
  log?: (line: string) => void;
}

/** Registers the fleet's devices through one replica (no broker: accounts are written afterwards). */
async function registerDevices(base: { dataDir: string; env: NodeJS.ProcessEnv; dbArgs: string[] }, ids: string[], factoryVersion: string): Promise<DeviceKey[]> {
  const authPort = await freePort();
  const server = await startServerChild({ dataDir: base.dataDir, env: base.env, args: [...base.dbArgs, "--no-mqtt", "--dev-tokens", "--auth-port", String(authPort), "--pid-file", join(base.dataDir, "register.pid"), "--log-file", join(base.dataDir, "register.log"), "--quiet"] });
  try {
    const op = await Operator.login(server.url);
    const keys: DeviceKey[] = new Array(ids.length);
    const body = (id: string) => ({ device_id: id, device_model: MODEL, hardware_version: "1.0", current_version: factoryVersion, groups: [GROUP] });
    await pool(ids.map((id, i) => async () => {
      // One operator may make 6,000 requests a minute: past that, wait as the 429 says.
      for (;;) {
        try {
          keys[i] = { id, apiKey: (await op.call<{ api_key: string }>("POST", ROUTES.devices, body(id))).api_key };
          return;
        } catch (e) {
          const wait = /: 429 .*retry in (\d+) second/.exec((e as Error).message);
          if (!wait) throw e;
          await new Promise((r) => setTimeout(r, Number(wait[1]) * 1000));
        }
      }
    }), 16);
    return keys;
  } finally {
    await server.stop();
  }
}

/** The durability settings the figure depends on, as the server reports them. */
async function postgresSettings(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const names = ["fsync", "synchronous_commit", "full_page_writes", "shared_buffers"];
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>("SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1) ORDER BY name", [names]);
    return rows.map((r) => `${r.name}=${r.setting}${r.unit ?? ""}`).join(" ");
  } finally {
    await client.end();
  }
}

/** CPU seconds of every PostgreSQL process serving this cluster (pg_stat_activity lists backends and background
 * workers), by pid, so a later reading can be subtracted; the server must run on this machine. */
async function postgresCpu(url: string): Promise<Map<number, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>("SELECT pid FROM pg_stat_activity");
    return new Map(rows.map((r) => [r.pid, cpuSeconds(r.pid)]));
  } finally {
    await client.end();
  }
}

const cpuSince = (before: Map<number, number>, after: Map<number, number>) =>
  [...after].reduce((s, [pid, v]) => s + (Number.isFinite(v) ? v - (before.get(pid) ?? 0) : 0), 0);

export async function fleetAtScale(o: FleetScaleOptions): Promise<FleetRun> {
  const log = o.log ?? console.log;
  const n = o.devices;
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  try {
    const pgServer: PgServer = o.databaseUrl ? pgServerAt(o.databaseUrl) : await startPgCluster();
    cleanup.unshift(() => pgServer.stop());
    const dbUrl = await pgServer.createDatabase();
    cleanup.unshift(() => pgServer.dropDatabase(dbUrl));
    const broker = await startMosquitto();
    cleanup.unshift(() => broker.close());
    // Each replica has a data dir of its own under this one; firmware blobs are shared through --blob-dir, and the
    // signing key and JWT secret through the database.
    const dataDir = mkdtempSync(join(tmpdir(), "ota-bench-scale-fleet-"));
    cleanup.unshift(() => rmSync(dataDir, { recursive: true, force: true }));
    const env = { ...process.env, OTA_JWT_SECRET: randomBytes(32).toString("hex"), OTA_MQTT_USERNAME: broker.admin.username, OTA_MQTT_PASSWORD: broker.admin.password };
    const dbArgs = ["--database-url", dbUrl];
    const factory = buildAppImage({ version: "1.0.0", size: 64 * 1024 });

    let t = performance.now();
    const ids = fleetDeviceIds(n, "scale-");
    const keys = await registerDevices({ dataDir, env, dbArgs }, ids, "1.0.0");
    await broker.stop();
    addDevicesToDynsecFile(broker.dynsecFile, keys);
    const db = openPgDb(dbUrl);
    try {
      confirmBrokerAccounts(db, keys);
    } finally {
      db.close();
    }
    await broker.start();
    const brokerRss = peakRssSampler(broker.pid()!);
    cleanup.unshift(() => brokerRss.stop());
    log(`fleet: ${n} devices registered, their broker accounts written, in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    const replicas: ServerChild[] = [];
    for (let i = 1; i <= REPLICAS; i++) {
      const replicaDir = join(dataDir, `replica-${i}`);
      mkdirSync(replicaDir, { recursive: true });
      const r = await startServerChild({
        dataDir: replicaDir, env, ...(o.cpuProfDir ? { cpuProfDir: o.cpuProfDir } : {}),
        args: [...dbArgs, "--blob-dir", join(dataDir, "blobs"), "--mqtt-url", broker.url, "--dev-tokens", "--auth-port", String(await freePort()), "--pid-file", join(dataDir, `replica-${i}.pid`), "--log-file", join(dataDir, `replica-${i}.log`), "--quiet"],
      });
      cleanup.unshift(() => r.stop());
      replicas.push(r);
    }
    const balancer = await spawnBalancer(replicas.map((r) => Number(new URL(r.url).port)));
    cleanup.unshift(() => balancer.stop());
    const url = `http://127.0.0.1:${balancer.port}`;
    const op = await Operator.login(url);

    t = performance.now();
    const fleet = await Fleet.start({
      devices: n, prefix: "scale-", apiKeys: new Map(keys.map((k) => [k.id, k.apiKey])), serverUrl: url, token: op.token, mqttUrl: broker.url,
      // The agent's own poll period: a check that timed out in a stage's notification storm is retried within a
      // minute, as in the field (bench/fleet.ts's 10 min would make the figure measure that period).
      model: MODEL, seed: 1, factoryImage: factory, pollIntervalMs: 60_000,
      ...(o.deviceLogFile ? { log: (line: string) => appendFileSync(o.deviceLogFile!, `${new Date().toISOString()} ${line}\n`) } : {}),
    });
    cleanup.unshift(() => fleet.stop());
    await fleet.waitConnected(600_000);
    const setupS = (performance.now() - t) / 1000;
    log(`fleet: ${n} devices booted and on MQTT in ${setupS.toFixed(1)} s; replica RSS ${replicas.map((r) => r.peakRssMiB().toFixed(0)).join(", ")} MiB`);

    const version = "1.1.0";
    const fw = await op.upload({ version, device_model: MODEL, name: `scale ${version}` }, buildAppImage({ version, size: 256 * 1024 }));
    const batchSize = Math.ceil(n / 10);
    const c = await op.createCampaign({
      name: "scale staged", firmware_id: fw.firmware_id, deployment_strategy: "staged", batch_size: batchSize,
      target_groups: [GROUP], failure_threshold_percent: 10, timeout_minutes: 30,
    });
    const cpu0 = { replicas: replicas.map((r) => r.cpuSeconds()), broker: cpuSeconds(broker.pid()!), pg: await postgresCpu(dbUrl), balancer: cpuSeconds(balancer.child.pid!), sim: process.cpuUsage() };
    const load0 = loadavg()[0]!;
    const t1 = performance.now();
    await op.start(c.campaign_id);
    let last = "";
    let status = "";
    let serverVersions: Record<string, number> = {};
    for (;;) {
      const stats = await op.campaignStats(c.campaign_id);
      status = stats.status;
      const line = `${stats.status}: stage ${stats.stages.filter((s) => s.state === "done").length}/${stats.stages.length}, completed ${stats.completed_devices}, failed ${stats.failed_devices}`;
      if (line !== last) log(`  ${((performance.now() - t1) / 1000).toFixed(1)} s ${line}`);
      last = line;
      const ended = ["completed", "failed", "paused", "cancelled"].includes(status);
      const late = performance.now() - t1 > CAMPAIGN_LIMIT_S * 1000;
      if (ended || late) {
        serverVersions = (await op.stats()).devices_by_version;
        if (late && !ended) status = `not finished after ${CAMPAIGN_LIMIT_S} s (${line})`;
        if (late || status !== "completed" || serverVersions[version] === n) break;
      }
      // Each poll costs the replicas a count over the campaign's devices: once a second is resolution enough.
      await new Promise((r) => setTimeout(r, 1000));
    }
    const campaignS = (performance.now() - t1) / 1000;
    const simCpu = process.cpuUsage(cpu0.sim);
    const balancerCpu = cpuSeconds(balancer.child.pid!) - cpu0.balancer;
    const connections = await balancer.stop();
    const run: FleetRun = {
      devices: n, batchSize, version, campaignS, status, serverVersions, simVersions: fleet.versions(), setupS,
      replicas: replicas.map((r, i) => ({ peakRssMiB: r.peakRssMiB(), cpuS: r.cpuSeconds() - cpu0.replicas[i]!, connections: connections[i] ?? 0 })),
      broker: { peakRssMiB: brokerRss.peakMiB(), cpuS: cpuSeconds(broker.pid()!) - cpu0.broker },
      postgres: { cpuS: cpuSince(cpu0.pg, await postgresCpu(dbUrl)), settings: await postgresSettings(dbUrl) },
      balancer: { cpuS: balancerCpu },
      sim: { peakRssMiB: process.resourceUsage().maxRSS / 1024, cpuS: (simCpu.user + simCpu.system) / 1e6 },
      loadAverage: [load0, loadavg()[0]!],
    };
    log(`campaign ${status} in ${campaignS.toFixed(1)} s; server records ${JSON.stringify(serverVersions)}, simulator ${JSON.stringify(run.simVersions)}; downloaded ${(fleet.downloadedBytes() / 2 ** 20).toFixed(0)} MiB`);
    log(`CPU during the campaign: replicas ${run.replicas.map((r) => r.cpuS.toFixed(1)).join(" + ")} s, PostgreSQL ${run.postgres.cpuS.toFixed(1)} s, Mosquitto ${run.broker.cpuS.toFixed(1)} s, balancer ${run.balancer.cpuS.toFixed(1)} s, simulator ${run.sim.cpuS.toFixed(1)} s`);
    return run;
  } finally {
    for (const step of cleanup) {
      try {
        await step();
      } catch (e) {
        log(`clean-up: ${(e as Error).message}`);
      }
    }
  }
}
