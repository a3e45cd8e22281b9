// The four rollback triggers on the manual clock: each fires for its own reason, and not below its sample size
// or inside its thresholds. Devices are the fleet helper's (they report statuses and health on demand).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deviceHealthPath, type HealthReport } from "../../device/protocol";
import { api, asAdmin, registerDevice, report, startHarness, type Harness } from "./harness";
import { campaign, createCampaign, devices, settle, setupFleet, start, type Fleet } from "./fleet";

let h: Harness;
let f: Fleet;
beforeEach(async () => {
  h = await startHarness();
  f = await setupFleet(h, 20);
});
afterEach(() => h.close());

async function health(deviceId: string, r: Partial<HealthReport>) {
  const body = { update_id: null, version: "1.2.0", reset_reason: "software", uptime_s: 60, free_heap: 100_000, min_free_heap: 90_000, crash_reboots: 0, checks: {}, metrics: {}, ...r };
  const res = await api(h, "POST", deviceHealthPath(deviceId), { apiKey: f.keys.get(deviceId), body });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}
const updateOf = async (id: string, deviceId: string) => (await devices(h, id)).find((d) => d.device_id === deviceId)!.update_id!;
/** The events of triggers that fired (a stage gate is not a trigger). */
const firings = async (id: string) =>
  (await api(h, "GET", `/api/v1/stats/campaigns/${id}`, asAdmin(h))).body.events.filter((e: any) => e.type === "threshold_crossed" && e.detail.trigger).map((e: any) => e.detail);
const rolledBackDevices = async (id: string) => (await devices(h, id)).filter((d) => d.rollback_update_id).map((d) => d.device_id);

describe("health_check", () => {
  it("fails a device on crash reboots after confirming; fires only at the sample size and above the threshold", async () => {
    const ids = f.ids.slice(0, 10);
    const id = await createCampaign(h, {
      firmware_id: f.fwNew.firmware_id, target_devices: ids, auto_rollback: true, rollback_triggers: ["health_check"],
      failure_threshold_percent: 20, failure_min_sample: 5, health_check_config: { soak_minutes: 30, max_crash_reboots: 0 },
    });
    await start(h, id);
    await settle(h, f, id);
    // All completed, but health is judged for 30 minutes: the campaign does not complete yet.
    expect(await campaign(h, id)).toMatchObject({ status: "in_progress", completed_devices: 10 });
    await health("d01", { update_id: await updateOf(id, "d01"), crash_reboots: 1, reset_reason: "panic" });
    let c = await campaign(h, id);
    expect(c).toMatchObject({ status: "in_progress", failed_devices: 1 }); // 1 of 1 judged, but below the sample of 5
    expect((await devices(h, id)).find((d) => d.device_id === "d01")!.note).toBe("health: 1 crash reboots (last reset panic) > 0");
    for (const d of ["d02", "d03", "d04", "d05"]) await health(d, { update_id: await updateOf(id, d) });
    expect((await campaign(h, id)).status).toBe("in_progress"); // 1 of 5 = 20 %: not above 20 %
    await health("d06", { update_id: await updateOf(id, "d06"), checks: { sensor: false } });
    c = await campaign(h, id);
    expect(c.status).toBe("failed"); // nothing left to dispatch
    expect(c.pause_reason).toBe("health check: 2 of 6 devices unhealthy (33.3% > 20%)");
    const [fired] = await firings(id);
    expect(fired).toMatchObject({ trigger: "health_check", sample: 6, observed: { unhealthy: 2, unhealthy_percent: 33.3, first: "d06: check sensor failed" } });
    // Every device on the release is rolled back, the unhealthy ones included.
    expect(await rolledBackDevices(id)).toEqual(ids);
  });

  it("a device that stops reporting within its window fails; after the window the campaign completes", async () => {
    const ids = f.ids.slice(0, 4);
    const id = await createCampaign(h, {
      firmware_id: f.fwNew.firmware_id, target_devices: ids, rollback_triggers: ["health_check"], failure_threshold_percent: 50,
      failure_min_sample: 4, health_check_config: { soak_minutes: 60, max_silence_minutes: 20 },
    });
    await start(h, id);
    await settle(h, f, id);
    for (const d of ids) await health(d, { update_id: await updateOf(id, d) });
    h.clock.advanceMinutes(15);
    for (const d of ids.slice(1)) await health(d, { update_id: await updateOf(id, d) });
    h.clock.advanceMinutes(10); // d01 silent for 25 minutes
    expect((await devices(h, id)).find((d) => d.device_id === "d01")!.note).toBe("health: no health report for 25 minutes (max 20)");
    expect((await campaign(h, id)).status).toBe("in_progress"); // 1 of 4 = 25 % ≤ 50 %
    for (const d of ids.slice(1)) await health(d, { update_id: await updateOf(id, d) });
    for (let i = 0; i < 2; i++) {
      h.clock.advanceMinutes(15);
      for (const d of ids.slice(1)) await health(d, { update_id: await updateOf(id, d) });
    }
    expect((await campaign(h, id)).status).toBe("in_progress"); // 55 minutes: still in the window
    h.clock.advanceMinutes(6); // past the 60-minute window: judged, the campaign ends (25 % ≤ 50 %)
    expect(await campaign(h, id)).toMatchObject({ status: "completed", failed_devices: 1, completed_devices: 3 });
  });
});

describe("metric_threshold", () => {
  it("compares the release with the devices still on the previous version, after the minimum sample", async () => {
    const ids = f.ids.slice(0, 12);
    const id = await createCampaign(h, {
      firmware_id: f.fwNew.firmware_id, target_devices: ids, max_concurrent_updates: 4, auto_rollback: true, rollback_triggers: ["metric_threshold"],
      health_check_config: { soak_minutes: 30, metric_rules: [{ metric: "queue_depth", max: 10, max_excess_percent: 10, min_sample: 4 }] },
    });
    await start(h, id);
    // The baseline: d05-d08 still run 1.0.0, and two of four are out of range there too.
    for (const [d, q] of [["d05", 12], ["d06", 20], ["d07", 3], ["d08", 1]] as const) await health(d, { version: "1.0.0", metrics: { queue_depth: q } });
    await settle(h, f, id); // d01-d04 complete; d05-d08 start (still on 1.0.0), d09-d12 wait
    for (const [d, q] of [["d01", 15], ["d02", 11], ["d03", 2]] as const) await health(d, { update_id: await updateOf(id, d), metrics: { queue_depth: q } });
    expect((await campaign(h, id)).status).toBe("in_progress"); // 2 of 3 out of range, but min_sample is 4
    await health("d04", { update_id: await updateOf(id, "d04"), metrics: { queue_depth: 4 } });
    expect((await campaign(h, id)).status).toBe("in_progress"); // 50 % on the release vs 50 % baseline: within
    await health("d04", { update_id: await updateOf(id, "d04"), metrics: { queue_depth: 30 } }); // its worst value now counts
    const c = await campaign(h, id);
    expect(c.status).toBe("paused");
    expect(c.pause_reason).toBe("metric queue_depth <= 10: 3 of 4 devices on the release out of range (75%) vs 2 of 4 on the previous version; excess 25 > 10 points");
    const [fired] = await firings(id);
    expect(fired).toMatchObject({ trigger: "metric_threshold", rule: "queue_depth <= 10", sample: 4, observed: { release_out_of_range: 3, worst: 30, baseline_out_of_range: 2, baseline_sample: 4 } });
    expect(await rolledBackDevices(id)).toEqual(["d01", "d02", "d03", "d04"]);
  });

  it("built-in metrics: crash reboots above 0 fire against a clean baseline", async () => {
    const ids = f.ids.slice(0, 4);
    const id = await createCampaign(h, {
      firmware_id: f.fwNew.firmware_id, target_devices: ids, rollback_triggers: ["metric_threshold"], failure_threshold_percent: 30,
      health_check_config: { metric_rules: [{ metric: "crash_reboots", max: 0 }] },
    });
    await start(h, id);
    await settle(h, f, id);
    await health("d01", { update_id: await updateOf(id, "d01"), crash_reboots: 2 });
    for (const d of ["d02", "d03"]) await health(d, { update_id: await updateOf(id, d) });
    expect((await campaign(h, id)).status).toBe("in_progress"); // 3 reported, the minimum sample is 4 devices
    await health("d04", { update_id: await updateOf(id, "d04") });
    expect((await campaign(h, id)).status).toBe("in_progress"); // 25 % vs no baseline: not above 30 points
    await health("d02", { update_id: await updateOf(id, "d02"), crash_reboots: 1 });
    expect((await campaign(h, id)).pause_reason).toMatch(/^metric crash_reboots <= 0: 2 of 4 devices/);
    expect((await campaign(h, id)).rollback_reason).toBeNull(); // auto_rollback off: paused only
  });
});

describe("timeout", () => {
  it("cancels an update not completed within timeout_minutes and counts it as failed", async () => {
    const small = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids.slice(0, 3), rollback_triggers: ["timeout"], timeout_minutes: 30, failure_threshold_percent: 20, failure_min_sample: 5 });
    const big = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids.slice(3, 13), rollback_triggers: ["timeout"], timeout_minutes: 30, failure_threshold_percent: 20, failure_min_sample: 5, auto_rollback: true });
    const other = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids.slice(13, 18), rollback_triggers: ["timeout"], timeout_minutes: 30, failure_threshold_percent: 20, failure_min_sample: 5 });
    for (const id of [small, big, other]) await start(h, id);
    await settle(h, f, small, (d) => (d === "d01" ? "silent" : "completed"));
    await settle(h, f, big, (d) => (d === "d04" ? "silent" : "completed"));
    await settle(h, f, other, (d) => (d === "d14" || d === "d15" ? "silent" : "completed"));
    h.clock.advanceMinutes(20);
    // Still downloading: never silent for 30 minutes, but not completed within 30 either.
    for (const [id, d] of [[small, "d01"], [big, "d04"], [other, "d14"], [other, "d15"]] as const) await report(h, f.keys.get(d)!, await updateOf(id, d), { status: "downloading", progress: 40 });
    h.clock.advanceMinutes(11);
    const upd = (await api(h, "GET", `/api/v1/updates/${await updateOf(big, "d04")}`, asAdmin(h))).body;
    expect(upd).toMatchObject({ status: "cancelled", error: { code: "TIMEOUT" } });
    expect((await devices(h, big)).find((d) => d.device_id === "d04")).toMatchObject({ state: "failed", note: "TIMEOUT: not completed within 30 minutes" });
    expect(await firings(small)).toEqual([]); // 1 of 3 finished: below the sample of 5
    expect(await firings(big)).toEqual([]); // 1 of 10 = 10 %: within 20 %
    expect((await campaign(h, big)).status).toBe("completed");
    const [fired] = await firings(other);
    expect(fired).toMatchObject({ trigger: "timeout", sample: 5, observed: { timed_out: 2, timed_out_percent: 40 } });
    expect((await campaign(h, other)).pause_reason).toBe("timeout: 2 of 5 finished devices did not complete within 30 minutes (40% > 20%)");
  });
});

describe("failure_rate and impossible rollbacks", () => {
  it("the failure-rate event names its trigger, rule and sample", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids.slice(0, 10), max_concurrent_updates: 5, failure_min_sample: 5, failure_threshold_percent: 20 });
    await start(h, id);
    await settle(h, f, id, (d) => (d === "d04" || d === "d05" ? "failed" : "completed")); // checked as d05 fails: 2 of 5
    expect((await campaign(h, id)).status).toBe("paused");
    expect(await firings(id)).toEqual([{ kind: "threshold", status: "paused", reason: "failure rate 40.0% > 20% over 5 finished devices", trigger: "failure_rate", rule: "failure rate > 20%", observed: { failure_rate_percent: 40, failed: 2 }, sample: 5 }]);
  });

  it("a rollback the server cannot do is flagged at creation and recorded once per device, not once per tick", async () => {
    const old = ["o1", "o2", "o3"];
    for (const d of old) f.keys.set(d, await registerDevice(h, d, { current_version: "0.9.0" })); // 0.9.0 was never uploaded
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: [...old, "d01"], auto_rollback: true, failure_min_sample: 2, failure_threshold_percent: 10 });
    const created = await campaign(h, id);
    expect(created.warnings).toEqual([{ code: "ROLLBACK_IMPOSSIBLE", missing_versions: ["0.9.0"], devices: old, message: "auto_rollback cannot take 3 device(s) back: no stored firmware for version(s) 0.9.0; upload them first" }]);
    await start(h, id);
    await settle(h, f, id, (d) => (d === "o1" ? "failed" : "completed"));
    for (let i = 0; i < 5; i++) h.clock.advance(1000); // five engine ticks
    const rollbacks = (await api(h, "GET", `/api/v1/stats/campaigns/${id}`, asAdmin(h))).body.events.filter((e: any) => e.type === "rollback");
    // Every campaign event also records the campaign's status then (the event contract); the rule is about the rest.
    expect(rollbacks.map((e: any) => (({ status: _s, ...d }) => d)(e.detail))).toEqual([{ reason: "auto: stage all failure rate 25.0% > 10%", rolled: 1, impossible: 2 }]);
    expect(h.logs.join("").split("campaign_rollback campaign_id").length - 1).toBe(1);
    const notes = Object.fromEntries((await devices(h, id)).map((d) => [d.device_id, d.note]));
    expect(notes).toMatchObject({ o2: "rollback impossible: no stored firmware for previous version 0.9.0", o3: "rollback impossible: no stored firmware for previous version 0.9.0" });
    expect(await rolledBackDevices(id)).toEqual(["d01"]);
  });
});
