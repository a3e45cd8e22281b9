// Fair canaries and live targets: the seeded spread sample, target_filter evaluated live (devices registered
// after the start join), the preview, and promotion gates; all through the REST API on the manual clock.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { PromotionGate } from "../../server-stub/campaigns/gates";
import { seededUnit, spreadOrder } from "../../server-stub/campaigns/targeting";
import { api, asAdmin, randomBytes, registerDevice, report, startHarness, uploadFirmware, type Harness } from "./harness";
import { campaign, devices, inFlight, settle, start, type Fleet } from "./fleet";

/** 40 devices: groups east/west × hardware 1.0/2.0, ten of each, registered in stratum order (list order is unfair). */
async function stratifiedFleet(h: Harness): Promise<Fleet & { stratum: Map<string, string> }> {
  const fwOld = await uploadFirmware(h, { version: "1.0.0" }, randomBytes(3000, 11));
  const fwNew = await uploadFirmware(h, { version: "1.2.0" }, randomBytes(3000, 12));
  const keys = new Map<string, string>();
  const stratum = new Map<string, string>();
  for (const group of ["east", "west"]) {
    for (const hw of ["1.0", "2.0"]) {
      for (let i = 0; i < 10; i++) {
        const id = `${group}-${hw}-${i}`;
        keys.set(id, await registerDevice(h, id, { current_version: "1.0.0", hardware_version: hw, groups: [group] }));
        stratum.set(id, `${group}/${hw}`);
      }
    }
  }
  return { keys, ids: [...keys.keys()], fwOld, fwNew, stratum };
}

async function create(h: Harness, body: Record<string, unknown>): Promise<string> {
  const r = await api(h, "POST", "/api/v1/campaigns", { ...asAdmin(h), body: { name: "t", ...body } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.campaign_id;
}

const countBy = (ids: string[], key: (id: string) => string) => ids.reduce((m, id) => m.set(key(id), (m.get(key(id)) ?? 0) + 1), new Map<string, number>());

describe("spread sample (pure)", () => {
  it("every prefix holds each stratum in proportion, within one device; the seed decides, the list order does not", () => {
    const ids = Array.from({ length: 90 }, (_, i) => `d${i}`);
    const stratum = (id: string) => (Number(id.slice(1)) < 60 ? "big" : Number(id.slice(1)) < 80 ? "mid" : "small"); // 60/20/10
    const order = spreadOrder(ids, "seed-1", stratum);
    expect([...order].sort()).toEqual([...ids].sort());
    for (let n = 1; n <= ids.length; n++) {
      const got = countBy(order.slice(0, n), stratum);
      for (const [s, size] of [["big", 60], ["mid", 20], ["small", 10]] as const) {
        expect(Math.abs((got.get(s) ?? 0) - (n * size) / 90), `prefix ${n}, stratum ${s}`).toBeLessThanOrEqual(1);
      }
    }
    expect(spreadOrder([...ids].reverse(), "seed-1", stratum)).toEqual(order);
    expect(spreadOrder(ids, "seed-2", stratum)).not.toEqual(order);
    expect(seededUnit("a", "b")).toBe(seededUnit("a", "b"));
  });
});

describe("campaign targeting", () => {
  let h: Harness;
  let gateVerdict: ReturnType<PromotionGate["check"]>;
  beforeEach(async () => {
    gateVerdict = { verdict: "pass" };
    const gate: PromotionGate = { name: "test-health", check: () => gateVerdict };
    h = await startHarness({ promotionGates: [gate] });
  });
  afterEach(() => h.close());

  it("a canary drawn by seeded sample spreads over groups and hardware versions, and the preview shows what the start targets", async () => {
    const f = await stratifiedFleet(h);
    const body = { firmware_id: f.fwNew.firmware_id, deployment_strategy: "canary", target_groups: ["east", "west"], canary_percentage: 20, canary_duration_minutes: 0, batch_size: 16, sample_seed: "s1" };
    const id = await create(h, body);
    const preview = (await api(h, "POST", `/api/v1/campaigns/${id}/preview`, asAdmin(h))).body;
    expect(preview.stages.map((s: any) => [s.name, s.total_devices])).toEqual([["canary", 8], ["rollout 1", 16], ["rollout 2", 16]]);
    const canary = preview.devices.filter((d: any) => d.stage === 0).map((d: any) => d.device_id);
    expect([...countBy(canary, (d) => f.stratum.get(d)!).values()]).toEqual([2, 2, 2, 2]);
    expect(canary).not.toEqual(f.ids.slice(0, 8));
    // Same seed, same sample (another campaign); another seed, another sample.
    const again = (await api(h, "POST", `/api/v1/campaigns/${await create(h, body)}/preview`, asAdmin(h))).body;
    expect(again.devices).toEqual(preview.devices);
    const other = (await api(h, "POST", `/api/v1/campaigns/${await create(h, { ...body, sample_seed: "s2" })}/preview`, asAdmin(h))).body;
    expect(other.devices.filter((d: any) => d.stage === 0)).not.toEqual(preview.devices.filter((d: any) => d.stage === 0));
    await start(h, id);
    expect((await devices(h, id)).map((d) => ({ device_id: d.device_id, stage: d.stage }))).toEqual(preview.devices.map((d: any) => ({ device_id: d.device_id, stage: d.stage })));
    expect((await inFlight(h, id)).sort()).toEqual([...canary].sort());
  });

  it("registered devices come before waiting records (never seen), which could only stall a canary", async () => {
    const fw = await uploadFirmware(h, { version: "1.2.0" }, randomBytes(3000, 12));
    const registered = ["r1", "r2", "r3", "r4"];
    for (const id of registered) await registerDevice(h, id);
    const waiting = ["w1", "w2", "w3", "w4", "w5", "w6"];
    const id = await create(h, { firmware_id: fw.firmware_id, deployment_strategy: "canary", canary_percentage: 40, target_devices: [...waiting, ...registered], create_missing: true });
    const preview = (await api(h, "POST", `/api/v1/campaigns/${id}/preview`, asAdmin(h))).body;
    expect(preview.devices.filter((d: any) => d.stage === 0).map((d: any) => d.device_id).sort()).toEqual(registered);
  });

  it("target_filter is evaluated live: a matching device registered after the start joins and completes; others do not", async () => {
    const fwNew = await uploadFirmware(h, { version: "1.2.0" }, randomBytes(3000, 12));
    const keys = new Map<string, string>();
    for (const id of ["lab-1", "lab-2"]) keys.set(id, await registerDevice(h, id, { groups: ["lab"], hardware_version: "2.1" }));
    await registerDevice(h, "office-1", { groups: ["office"], hardware_version: "2.1" });
    const id = await create(h, { firmware_id: fwNew.firmware_id, deployment_strategy: "staged", batch_size: 1, target_filter: { groups: ["lab"], min_hardware_version: "2.0" } });
    const preview = (await api(h, "POST", `/api/v1/campaigns/${id}/preview`, asAdmin(h))).body;
    expect(preview.devices.map((d: any) => d.device_id).sort()).toEqual(["lab-1", "lab-2"]);
    const s = await start(h, id);
    expect(s.total_devices).toBe(2);
    const f: Fleet = { keys, ids: [], fwOld: null, fwNew };
    await settle(h, f, id, () => "silent"); // batch 1 stays in flight
    keys.set("lab-3", await registerDevice(h, "lab-3", { groups: ["lab"], hardware_version: "2.5" }));
    await registerDevice(h, "lab-old", { groups: ["lab"], hardware_version: "1.0" }); // outside the hardware range
    await registerDevice(h, "office-2", { groups: ["office"], hardware_version: "2.5" });
    h.clock.advance(1000);
    const members = await devices(h, id);
    expect(members.map((d) => d.device_id).sort()).toEqual(["lab-1", "lab-2", "lab-3"]);
    expect(members.find((d) => d.device_id === "lab-3")!.stage).toBe(1); // the last stage
    for (let i = 0; i < 3; i++) await settle(h, f, id);
    expect(await campaign(h, id)).toMatchObject({ status: "completed", total_devices: 3, completed_devices: 3 });
    expect(h.logs.some((l) => l.includes("campaign_device_joined") && l.includes("lab-3"))).toBe(true);
  });

  it("a promotion gate holds the next stage while it waits and pauses the campaign when it fails", async () => {
    const f = await stratifiedFleet(h);
    const id = await create(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "canary", target_groups: ["east"], canary_percentage: 10, canary_duration_minutes: 60, batch_size: 9 });
    await start(h, id);
    gateVerdict = { verdict: "wait", reason: "2 of 5 health reports" };
    await settle(h, f, id);
    h.clock.advanceMinutes(61); // soak over, but the gate waits
    expect((await campaign(h, id)).current_stage).toBe(0);
    expect(await inFlight(h, id)).toEqual([]);
    gateVerdict = { verdict: "fail", reason: "crash reboots 3 > 0" };
    h.clock.advance(1000);
    const paused = await campaign(h, id);
    expect(paused).toMatchObject({ status: "paused", current_stage: 0 });
    expect(paused.pause_reason).toBe("stage canary: test-health: crash reboots 3 > 0");
    gateVerdict = { verdict: "pass" };
    await start(h, id); // the operator accepts the canary: the next stage starts
    expect((await inFlight(h, id)).length).toBe(9);
  });

  it("a deferred device is in progress, not failed, and completes later", async () => {
    const f = await stratifiedFleet(h);
    const id = await create(h, { firmware_id: f.fwNew.firmware_id, target_devices: ["east-1.0-0"], failure_threshold_percent: 0 });
    await start(h, id);
    const [d] = await devices(h, id);
    const key = f.keys.get("east-1.0-0")!;
    const [r] = await report(h, key, d!.update_id!, { status: "deferred", reason: "busy: user session", deferred_until: "2025-10-01T02:00:00Z" });
    expect(r!.status).toBe(200);
    expect(await campaign(h, id)).toMatchObject({ status: "in_progress", in_progress_devices: 1, failed_devices: 0 });
    await report(h, key, d!.update_id!, "deferred", "downloading", "installing", "completed");
    expect(await campaign(h, id)).toMatchObject({ status: "completed", completed_devices: 1 });
    const back = await report(h, key, d!.update_id!, "deferred");
    expect(back[0]!.status).toBe(409); // never backwards
  });

  it("bad targeting input is a 400 with a code", async () => {
    const fw = await uploadFirmware(h, { version: "1.2.0" }, randomBytes(3000, 12));
    for (const extra of [{ target_filter: {} }, { selection: "random" }]) {
      const r = await api(h, "POST", "/api/v1/campaigns", { ...asAdmin(h), body: { name: "x", firmware_id: fw.firmware_id, ...extra } });
      expect([extra, r.status, typeof r.body.error?.code]).toEqual([extra, 400, "string"]);
    }
    const none = await create(h, { firmware_id: fw.firmware_id, target_filter: { device_model: "NOBODY" } });
    const r = await api(h, "POST", `/api/v1/campaigns/${none}/start`, asAdmin(h));
    expect([r.status, r.body.error.code]).toEqual([409, "NO_TARGET_DEVICES"]);
    expect((await api(h, "POST", "/api/v1/campaigns/camp_nope/preview", asAdmin(h))).status).toBe(404);
  });
});
