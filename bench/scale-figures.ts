// The pure parts of `npm run bench:scale` (bench/scale.ts): its arguments, and the figures it makes of two load runs.
import { CONTACT_RESOLUTION_MS } from "../server-stub/model/devices";
import type { Figure } from "./run";

export interface ScaleArgs {
  /** Devices registered, each with its own API key and a pending update. */
  devices: number;
  /** Concurrent keep-alive connections, the same for both routes. */
  connections: number;
  /** Seconds of load per route (after a warm-up of `warmupS`), split into `rounds` that alternate the two routes so
   * a change in the machine's other load (it is shared) weighs on both alike. */
  durationS: number;
  rounds: number;
  warmupS: number;
  /** The check-route load's PostgreSQL (not supported there yet: refused) and external MQTT broker; null = the
   * embedded defaults. The fleet run uses `databaseUrl` as the server to create its database on. */
  databaseUrl: string | null;
  mqttUrl: string | null;
  /** Simulated devices of the fleet campaign across replicas (fleet_N_campaign_s); 0 skips it. */
  fleetDevices: number;
  /** Skip the check-route load (available_updates_rps_vs_hello), e.g. to run only the fleet. */
  skipRps: boolean;
}

export const SCALE_DEFAULTS: ScaleArgs = { devices: 1000, connections: 32, durationS: 12, rounds: 4, warmupS: 2, databaseUrl: null, mqttUrl: null, fleetDevices: 10_000, skipRps: false };

const USAGE = "usage: npm run bench:scale -- [--devices N] [--connections N] [--duration S] [--rounds N] [--warmup S] [--database-url URL] [--mqtt-url URL] [--fleet-devices N] [--skip-rps]";

/** `--name value` or `--name=value`; throws a message with the usage on anything else. */
export function parseScaleArgs(argv: readonly string[]): ScaleArgs {
  const args = { ...SCALE_DEFAULTS };
  const integer = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, not "${v}"\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]!);
    if (!m) throw new Error(`unexpected argument "${argv[i]}"\n${USAGE}`);
    const name = m[1]!;
    if (name === "skip-rps" && m[2] === undefined) {
      args.skipRps = true;
      continue;
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value\n${USAGE}`);
    if (name === "devices") args.devices = integer(name, value, 1, 100_000);
    else if (name === "connections") args.connections = integer(name, value, 1, 1000);
    else if (name === "duration") args.durationS = integer(name, value, 1, 600);
    else if (name === "rounds") args.rounds = integer(name, value, 1, 60);
    else if (name === "warmup") args.warmupS = integer(name, value, 0, 60);
    else if (name === "database-url") args.databaseUrl = urlOf(name, value, ["postgres:", "postgresql:"]);
    else if (name === "mqtt-url") args.mqttUrl = urlOf(name, value, ["mqtt:", "mqtts:"]);
    else if (name === "fleet-devices") args.fleetDevices = integer(name, value, 0, 100_000);
    else throw new Error(`unknown option --${name}\n${USAGE}`);
  }
  if (args.durationS < args.rounds) throw new Error(`--duration (${args.durationS} s) must give each of the ${args.rounds} rounds at least a second\n${USAGE}`);
  return args;
}

function urlOf(name: string, value: string, schemes: string[]): string {
  let scheme = "";
  try {
    scheme = new URL(value).protocol;
  } catch {
    /* not a URL: refused below */
  }
  if (!schemes.includes(scheme)) throw new Error(`--${name} must be a ${schemes.join(" or ")}// URL, not "${value}"\n${USAGE}`);
  return value;
}

/** What one autocannon run of one route measured. */
export interface RouteLoad {
  /** Requests per second over the run. */
  rps: number;
  /** How long the run lasted. */
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Responses other than 2xx, connection errors and timeouts: any makes the run's figures meaningless. */
  non2xx: number;
  errors: number;
}

/** One route's rounds as one run: requests over the total time, the median p50 and the worst p99. */
export function combineRounds(rounds: readonly RouteLoad[]): RouteLoad {
  if (rounds.length === 0) throw new Error("no rounds to combine");
  const requests = rounds.reduce((n, r) => n + r.requests, 0);
  const seconds = rounds.reduce((n, r) => n + r.seconds, 0);
  const p50s = rounds.map((r) => r.p50Ms).sort((a, b) => a - b);
  const mid = p50s.length >> 1;
  return {
    rps: requests / seconds,
    seconds,
    p50Ms: p50s.length % 2 ? p50s[mid]! : (p50s[mid - 1]! + p50s[mid]!) / 2,
    p99Ms: Math.max(...rounds.map((r) => r.p99Ms)),
    requests,
    non2xx: rounds.reduce((n, r) => n + r.non2xx, 0),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
  };
}

export const RPS_RATIO_TARGET = 0.5;

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

/** What the load's devices cost in contact writes: a device that checks again within CONTACT_RESOLUTION_MS reporting
 * nothing new is not written again, so a few devices checking many times a second write far less often than a fleet
 * polling every 60 s, each of whose checks writes. */
function contactNote(check: RouteLoad, devices: number): string {
  const perDevice = check.rps / devices;
  const resolutionS = CONTACT_RESOLUTION_MS / 1000;
  return `each device checked ${perDevice.toFixed(1)}/s, and a contact is written at most once per device per ${resolutionS} s, so about ${Math.min(1, 1 / (perDevice * resolutionS)).toPrecision(2)} of the checks wrote (a fleet polling every 60 s: all)`;
}

/** `available_updates_rps_vs_hello` and the four figures it is made of. A run with failures is never "met". */
export function checkVsHelloFigures(check: RouteLoad, hello: RouteLoad, args: Pick<ScaleArgs, "devices" | "connections" | "durationS" | "rounds">): Figure[] {
  const clean = (l: RouteLoad) => l.non2xx === 0 && l.errors === 0 && l.requests > 0;
  const ratio = hello.rps > 0 ? check.rps / hello.rps : 0;
  const failures = [["check", check], ["hello", hello]].filter(([, l]) => !clean(l as RouteLoad)).map(([n, l]) => `${n}: ${(l as RouteLoad).non2xx} non-2xx, ${(l as RouteLoad).errors} errors`);
  const load = `${args.connections} connections, ${args.durationS} s each in ${args.rounds} alternating rounds, same process and listener`;
  return [
    {
      name: "available_updates_rps_vs_hello", value: round(ratio, 3), unit: "ratio", target: `>= ${RPS_RATIO_TARGET}`, met: failures.length === 0 && ratio >= RPS_RATIO_TARGET,
      note: `device check route (signed manifest, API-key auth, ${args.devices} devices in rotation) / public fastify hello route; ${load}; ${contactNote(check, args.devices)}${failures.length ? `; FAILED REQUESTS ${failures.join("; ")}` : ""}`,
    },
    { name: "available_updates_rps", value: round(check.rps, 0), unit: "req/s", note: `${check.requests} requests` },
    { name: "available_updates_p50_ms", value: round(check.p50Ms, 2), unit: "ms" },
    { name: "available_updates_p99_ms", value: round(check.p99Ms, 2), unit: "ms" },
    { name: "hello_rps", value: round(hello.rps, 0), unit: "req/s", note: `${hello.requests} requests` },
    { name: "hello_p99_ms", value: round(hello.p99Ms, 2), unit: "ms" },
  ];
}

/** What one staged campaign of a fleet across server replicas measured (bench/fleet-scale.ts). */
export interface FleetRun {
  devices: number;
  batchSize: number;
  version: string;
  campaignS: number;
  status: string;
  /** Devices per current version in the server's records (GET /api/v1/stats) after the campaign. */
  serverVersions: Record<string, number>;
  /** Devices per version their bootloader picked, in the simulator. */
  simVersions: Record<string, number>;
  setupS: number;
  replicas: { peakRssMiB: number; cpuS: number; connections: number }[];
  broker: { peakRssMiB: number; cpuS: number };
  postgres: { cpuS: number; settings: string };
  balancer: { cpuS: number };
  sim: { peakRssMiB: number; cpuS: number };
  /** The machine's 1-minute load average when the campaign started and ended (it is shared with other work). */
  loadAverage: [number, number];
}

export const FLEET_TARGET_S = 180;

/** fleet_N_campaign_s and what it cost; met only when the campaign completed and every device runs the new version
 * both in the server's records and on its simulated flash. CPU figures cover the campaign, from start to the end. */
export function fleetFigures(r: FleetRun): Figure[] {
  const p = `fleet_${r.devices}`;
  const everywhere = r.serverVersions[r.version] === r.devices && r.simVersions[r.version] === r.devices;
  const ok = r.status === "completed" && everywhere;
  const cpu = (name: string, v: number, note: string): Figure => ({ name: `${p}_campaign_cpu_${name}_s`, value: round(v, 1), unit: "s", note });
  return [
    {
      name: `${p}_campaign_s`, value: round(r.campaignS, 1), unit: "s", target: `<= ${FLEET_TARGET_S}`, met: ok && r.campaignS <= FLEET_TARGET_S,
      note: `staged, ${Math.ceil(r.devices / r.batchSize)} batches of ${r.batchSize}, 256 KiB image, ${r.replicas.length} replicas behind a round-robin TCP balancer (own process), PostgreSQL (${r.postgres.settings}), Mosquitto 2 with dynamic security; from campaign start until the campaign completed and every device runs ${r.version} in the server's records; load average ${r.loadAverage.map((l) => l.toFixed(1)).join(" → ")}${ok ? "" : `; NOT ALL UPDATED: ${r.status}, server ${JSON.stringify(r.serverVersions)}, simulator ${JSON.stringify(r.simVersions)}`}`,
    },
    ...r.replicas.map((x, i): Figure => ({ name: `${p}_replica_${i + 1}_peak_rss_mb`, value: round(x.peakRssMiB, 0), unit: "MiB", note: `VmHWM of server replica ${i + 1}; it was given ${x.connections} of the balancer's connections` })),
    { name: `${p}_broker_peak_rss_mb`, value: round(r.broker.peakRssMiB, 0), unit: "MiB", note: `VmHWM of Mosquitto (${r.devices} device accounts and sessions)` },
    { name: `${p}_sim_peak_rss_mb`, value: round(r.sim.peakRssMiB, 0), unit: "MiB", note: "the process running every simulated device (sparse flashes)" },
    ...r.replicas.map((x, i) => cpu(`replica_${i + 1}`, x.cpuS, `CPU time of server replica ${i + 1}`)),
    cpu("postgres", r.postgres.cpuS, "PostgreSQL processes (backends and background) during the campaign"),
    cpu("broker", r.broker.cpuS, "Mosquitto"),
    cpu("balancer", r.balancer.cpuS, "the TCP balancer process"),
    cpu("sim", r.sim.cpuS, `the simulator (2 cores = ${round(2 * r.campaignS, 0)} CPU-s of wall time)`),
    { name: `${p}_setup_s`, value: round(r.setupS, 1), unit: "s", note: "boot every simulated device and connect it to the broker through the replicas (registration and broker accounts before, not counted)" },
  ];
}


/** failover_s (bench/scale-failover.ts): kill -9 of the leader mid-campaign until the other replica's engine dispatches
 * the next stage; met only when the campaign completed with every device record and event accounted for. */
export function failoverFigures(r: { failoverMs: number; status: string; lost: string[]; devices: number; batchSize: number }): Figure[] {
  const whole = r.status === "completed" && r.lost.length === 0;
  return [{
    name: "failover_s", value: round(r.failoverMs / 1000, 2), unit: "s", target: "campaign completes, nothing lost", met: whole,
    note: `2 ota-server processes on one PostgreSQL, staged campaign over ${r.devices} devices in batches of ${r.batchSize}, leader killed (SIGKILL) ` +
      `in the middle stage; leadership poll 1 s; campaign ${r.status}${r.lost.length ? `; LOST ${r.lost.slice(0, 5).join("; ")}` : "; every device record and event accounted for"}`,
  }];
}
