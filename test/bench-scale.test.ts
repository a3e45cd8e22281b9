// The pure parts of `npm run bench:scale`: its arguments and the figures it makes (the load run itself is not in npm test).
import { describe, expect, it } from "vitest";
import { checkVsHelloFigures, combineRounds, failoverFigures, fleetFigures, parseScaleArgs, SCALE_DEFAULTS, type FleetRun, type RouteLoad } from "../bench/scale-figures";

const load = (o: Partial<RouteLoad>): RouteLoad => ({ rps: 1000, seconds: 10, p50Ms: 1, p99Ms: 5, requests: 10_000, non2xx: 0, errors: 0, ...o });
const byName = (figures: ReturnType<typeof checkVsHelloFigures>) => Object.fromEntries(figures.map((f) => [f.name, f]));

describe("bench:scale arguments", () => {
  it("defaults to 1,000 devices on the embedded database and broker", () => {
    expect(parseScaleArgs([])).toEqual(SCALE_DEFAULTS);
    expect(SCALE_DEFAULTS).toMatchObject({ devices: 1000, databaseUrl: null, mqttUrl: null, fleetDevices: 10_000, skipRps: false });
  });

  it("takes --name value and --name=value, and the URLs for PostgreSQL and an external broker", () => {
    expect(parseScaleArgs(["--devices", "50", "--connections=8", "--duration", "6", "--rounds", "3", "--warmup=0", "--database-url", "postgres://ota@db/ota", "--mqtt-url=mqtt://127.0.0.1:1883"]))
      .toEqual({ devices: 50, connections: 8, durationS: 6, rounds: 3, warmupS: 0, databaseUrl: "postgres://ota@db/ota", mqttUrl: "mqtt://127.0.0.1:1883", fleetDevices: 10_000, skipRps: false });
  });

  it("takes the fleet's size (0 skips the fleet) and --skip-rps, a flag without a value", () => {
    expect(parseScaleArgs(["--fleet-devices", "500", "--skip-rps"])).toMatchObject({ fleetDevices: 500, skipRps: true });
    expect(parseScaleArgs(["--skip-rps", "--fleet-devices=0"])).toMatchObject({ fleetDevices: 0, skipRps: true });
  });

  it.each([
    [["--devices", "0"], /--devices must be an integer from 1/],
    [["--devices", "1e3"], /--devices must be an integer/],
    [["--connections"], /--connections needs a value/],
    [["--duration", "2", "--rounds", "4"], /each of the 4 rounds at least a second/],
    [["--database-url", "mysql://x/y"], /--database-url must be a postgres: or postgresql:\/\/ URL/],
    [["--mqtt-url", "not a url"], /--mqtt-url must be a mqtt: or mqtts:/],
    [["--replicas", "2"], /unknown option --replicas/],
    [["--fleet-devices", "-1"], /--fleet-devices must be an integer from 0 to 100000/],
    [["--skip-rps=yes"], /unknown option --skip-rps/],
    [["devices"], /unexpected argument "devices"/],
  ])("refuses %j with a message and the usage", (argv, message) => {
    expect(() => parseScaleArgs(argv)).toThrow(message);
    expect(() => parseScaleArgs(argv)).toThrow(/usage: npm run bench:scale/);
  });
});

describe("bench:scale figures", () => {
  const args = { devices: 1000, connections: 32, durationS: 12, rounds: 4 };

  it("is the ratio of the check route's rate to the hello route's, met from 0.5 on", () => {
    const f = byName(checkVsHelloFigures(load({ rps: 6000, p50Ms: 4, p99Ms: 11.234 }), load({ rps: 10_000, p99Ms: 3 }), args));
    expect(f.available_updates_rps_vs_hello).toMatchObject({ value: 0.6, unit: "ratio", target: ">= 0.5", met: true });
    expect(f.available_updates_rps!.value).toBe(6000);
    expect(f.available_updates_p50_ms!.value).toBe(4);
    expect(f.available_updates_p99_ms!.value).toBe(11.23);
    expect(f.hello_rps!.value).toBe(10_000);
    expect(f.hello_p99_ms!.value).toBe(3);
    expect(byName(checkVsHelloFigures(load({ rps: 4999 }), load({ rps: 10_000 }), args)).available_updates_rps_vs_hello).toMatchObject({ value: 0.5, met: false });
  });

  it("is never met when a route answered anything but 2xx or failed to connect", () => {
    const f = byName(checkVsHelloFigures(load({ rps: 9000, non2xx: 3 }), load({ rps: 10_000, errors: 1 }), args));
    expect(f.available_updates_rps_vs_hello!.met).toBe(false);
    expect(f.available_updates_rps_vs_hello!.note).toContain("FAILED REQUESTS check: 3 non-2xx, 0 errors; hello: 0 non-2xx, 1 errors");
    expect(byName(checkVsHelloFigures(load({ requests: 0, rps: 0 }), load({ rps: 0, requests: 0 }), args)).available_updates_rps_vs_hello).toMatchObject({ value: 0, met: false });
  });

  it("combines alternating rounds: requests over total time, median p50, worst p99, failures summed", () => {
    const c = combineRounds([
      load({ requests: 3000, seconds: 3, rps: 1000, p50Ms: 2, p99Ms: 9 }),
      load({ requests: 6000, seconds: 3, rps: 2000, p50Ms: 1, p99Ms: 20, non2xx: 1 }),
      load({ requests: 3000, seconds: 6, rps: 500, p50Ms: 5, p99Ms: 7, errors: 2 }), // not the mean of the rates
    ]);
    expect(c).toEqual({ rps: 1000, seconds: 12, p50Ms: 2, p99Ms: 20, requests: 12_000, non2xx: 1, errors: 2 });
    expect(combineRounds([load({ p50Ms: 1 }), load({ p50Ms: 4 })]).p50Ms).toBe(2.5);
    expect(() => combineRounds([])).toThrow(/no rounds/);
  });

  it("failover_s is met only when the campaign completed with nothing lost, however fast the takeover", () => {
    const run = { failoverMs: 420, status: "completed", lost: [] as string[], devices: 60, batchSize: 20 };
    expect(failoverFigures(run)[0]).toMatchObject({ name: "failover_s", value: 0.42, unit: "s", met: true });
    expect(failoverFigures({ ...run, lost: ["fo-0001: 2 updates"] })[0]).toMatchObject({ met: false, note: expect.stringMatching(/LOST fo-0001: 2 updates/) });
    expect(failoverFigures({ ...run, status: "failed" })[0]!.met).toBe(false);
  });

describe("bench:scale contact note", () => {
  it("says how many checks wrote a contact: few when a few devices check many times a second, all for a slow-polling fleet", () => {
    const note = (rps: number, devices: number) => byName(checkVsHelloFigures(load({ rps }), load({ rps: 10_000 }), { devices, connections: 32, durationS: 12, rounds: 4 })).available_updates_rps_vs_hello!.note;
    expect(note(6000, 1000)).toContain("each device checked 6.0/s, and a contact is written at most once per device per 30 s, so about 0.0056 of the checks wrote");
    expect(note(100, 100_000)).toContain("so about 1.0 of the checks wrote");
  });
});
});

describe("fleet campaign figures", () => {
  const run = (o: Partial<FleetRun> = {}): FleetRun => ({
    devices: 100, batchSize: 10, version: "1.1.0", campaignS: 42.04, status: "completed", serverVersions: { "1.1.0": 100 }, simVersions: { "1.1.0": 100 }, setupS: 3,
    replicas: [{ peakRssMiB: 201.4, cpuS: 20, connections: 130 }, { peakRssMiB: 188, cpuS: 18, connections: 126 }],
    broker: { peakRssMiB: 12, cpuS: 1 }, postgres: { cpuS: 9, settings: "fsync=on" }, balancer: { cpuS: 1 }, sim: { peakRssMiB: 600, cpuS: 10 }, loadAverage: [2, 3.25], ...o,
  });
  const fleetByName = (r: FleetRun) => Object.fromEntries(fleetFigures(r).map((f) => [f.name, f]));

  it("is the campaign's time, met up to 180 s when every device runs the new version on both sides", () => {
    const f = fleetByName(run());
    expect(f.fleet_100_campaign_s).toMatchObject({ value: 42, unit: "s", target: "<= 180", met: true });
    expect(f.fleet_100_campaign_s!.note).toContain("10 batches of 10");
    expect(f.fleet_100_campaign_s!.note).toContain("fsync=on");
    expect(f.fleet_100_campaign_s!.note).toContain("load average 2.0 → 3.3");
    expect(f.fleet_100_replica_1_peak_rss_mb).toMatchObject({ value: 201, unit: "MiB" });
    expect(f.fleet_100_replica_2_peak_rss_mb!.note).toContain("126 of the balancer's connections");
    expect(f.fleet_100_broker_peak_rss_mb!.value).toBe(12);
    expect(f.fleet_100_campaign_cpu_postgres_s!.value).toBe(9);
    expect(fleetByName(run({ campaignS: 180 })).fleet_100_campaign_s!.met).toBe(true);
    expect(fleetByName(run({ campaignS: 180.04 })).fleet_100_campaign_s!.met).toBe(false);
  });

  it.each([
    ["the campaign did not complete", { status: "paused" }],
    ["the server's records miss a device", { serverVersions: { "1.1.0": 99, "1.0.0": 1 } }],
    ["a simulated device still boots the old image", { simVersions: { "1.1.0": 99, "1.0.0": 1 } }],
  ])("is not met when %s, and says so", (_why, o) => {
    const f = fleetByName(run(o)).fleet_100_campaign_s!;
    expect(f.met).toBe(false);
    expect(f.note).toContain("NOT ALL UPDATED");
  });
});
