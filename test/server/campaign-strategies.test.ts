// Deployment strategies and scheduling, end to end through the REST API with a manual clock.
import { readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { normalizeConfig } from "../../server-stub/campaigns/config";
import { strategyFor } from "../../server-stub/campaigns/strategies";
import type { FleetView } from "../../server-stub/campaigns/strategies/strategy";
import { api, asAdmin, registerDevice, startHarness, type Harness } from "./harness";
import { campaign, createCampaign, devices, inFlight, settle, setupFleet, start, type Fleet } from "./fleet";

let h: Harness;
let f: Fleet;
beforeEach(async () => {
  h = await startHarness();
  f = await setupFleet(h, 20);
});
afterEach(() => h.close());

describe("campaign strategies", () => {
  it("immediate: everyone at once, capped by max_concurrent_updates", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "immediate", target_devices: f.ids.slice(0, 5), max_concurrent_updates: 2 });
    expect((await campaign(h, id)).status).toBe("created");
    const s = await start(h, id);
    expect(s).toMatchObject({ status: "in_progress", total_devices: 5, in_progress_devices: 2, pending_devices: 3 });
    expect(await settle(h, f, id)).toEqual(["d01", "d02"]);
    expect(await inFlight(h, id)).toEqual(["d03", "d04"]);
    await settle(h, f, id);
    await settle(h, f, id);
    const done = await campaign(h, id);
    expect(done).toMatchObject({ status: "completed", completed_devices: 5, failed_devices: 0, in_progress_devices: 0 });
    expect(done.stages).toEqual([expect.objectContaining({ name: "all", state: "done", total_devices: 5, completed: 5 })]);
    expect((await api(h, "GET", "/api/v1/devices/d05", asAdmin(h))).body.current_version).toBe("1.2.0");
  });

  it("scheduled (the HOWTO's value): immediate at scheduled_start, which it requires", async () => {
    const at = new Date(h.clock.now() + 2 * 3600_000).toISOString();
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "scheduled", scheduled_start: at, target_devices: ["d01", "d02"] });
    const s = await start(h, id);
    expect(s).toMatchObject({ status: "scheduled", deployment_strategy: "scheduled" });
    expect(s.stages.map((x: any) => [x.name, x.total_devices])).toEqual([["all", 2]]);
    h.clock.advanceMinutes(119);
    expect(await campaign(h, id)).toMatchObject({ status: "scheduled", in_progress_devices: 0 });
    expect((await api(h, "GET", "/api/v1/devices/d01/available-updates", { apiKey: f.keys.get("d01") })).body.update_available).toBe(false);
    h.clock.advanceMinutes(1);
    expect(await campaign(h, id)).toMatchObject({ status: "in_progress", in_progress_devices: 2 });
    expect((await campaign(h, id)).started_at).toBe(at);
    const r = await api(h, "POST", "/api/v1/campaigns", { ...asAdmin(h), body: { name: "x", firmware_id: f.fwNew.firmware_id, deployment_strategy: "scheduled" } });
    expect([r.status, r.body.error.code, r.body.error.message]).toEqual([400, "INVALID_CAMPAIGN", "deployment_strategy scheduled requires scheduled_start"]);
  });

  it("staged: rollout_percentage in batches; the next batch waits for the current one and its failure gate", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "staged", target_devices: f.ids.slice(0, 10), rollout_percentage: 50, batch_size: 2, failure_threshold_percent: 10 });
    const s = await start(h, id);
    expect(s.total_devices).toBe(5);
    expect(s.stages.map((x: any) => x.total_devices)).toEqual([2, 2, 1]);
    expect(await inFlight(h, id)).toEqual(["d01", "d02"]);
    await settle(h, f, id, (d) => (d === "d01" ? "completed" : "silent"));
    expect(await inFlight(h, id)).toEqual(["d02"]); // batch 2 waits for d02
    await settle(h, f, id);
    expect(await inFlight(h, id)).toEqual(["d03", "d04"]);
    await settle(h, f, id, (d) => (d === "d03" ? "failed" : "completed")); // 50 % > 10 %
    const paused = await campaign(h, id);
    expect(paused).toMatchObject({ status: "paused", failed_devices: 1, pending_devices: 1 });
    expect(paused.pause_reason).toMatch(/stage batch 2 failure rate 50.0% > 10%/);
    expect(await inFlight(h, id)).toEqual([]);
    await start(h, id); // operator accepts the batch and resumes
    expect(await inFlight(h, id)).toEqual(["d05"]);
    await settle(h, f, id);
    const end = await campaign(h, id);
    expect(end).toMatchObject({ status: "failed", completed_devices: 4, failed_devices: 1 }); // 20 % overall > 10 %
    expect((await devices(h, id)).map((d) => d.device_id)).not.toContain("d06"); // outside the 50 %
  });

  it("canary: canary_percentage first, canary_duration_minutes of soak, then the rest in batches", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "canary", target_devices: f.ids, canary_percentage: 10, canary_duration_minutes: 1440, batch_size: 9 });
    const s = await start(h, id);
    expect(s.stages.map((x: any) => [x.name, x.total_devices])).toEqual([["canary", 2], ["rollout 1", 9], ["rollout 2", 9]]);
    expect(await inFlight(h, id)).toEqual(["d01", "d02"]);
    await settle(h, f, id);
    const soaking = await campaign(h, id);
    expect(soaking.stages[0].state).toBe("soaking");
    expect(soaking.stages[0].soak_until).toBe(new Date(h.clock.now() + 1440 * 60_000).toISOString());
    h.clock.advanceMinutes(1439);
    expect(await inFlight(h, id)).toEqual([]);
    h.clock.advanceMinutes(1);
    expect(await inFlight(h, id)).toHaveLength(9);
    await settle(h, f, id);
    expect(await inFlight(h, id)).toHaveLength(9); // no soak between rollout batches
    await settle(h, f, id);
    expect(await campaign(h, id)).toMatchObject({ status: "completed", completed_devices: 20 });
  });

  it("canary: a failing canary stops the rollout before the rest", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "canary", target_devices: f.ids, canary_percentage: 10, canary_duration_minutes: 60, failure_threshold_percent: 10 });
    await start(h, id);
    await settle(h, f, id, (d) => (d === "d02" ? "rolled_back" : "completed"));
    h.clock.advanceMinutes(600);
    expect(await campaign(h, id)).toMatchObject({ status: "paused", failed_devices: 0, rolled_back_devices: 1, rolled_back_by_device: 1, completed_devices: 1, pending_devices: 18 });
    expect(await inFlight(h, id)).toEqual([]);
  });

  it("blue_green: green only after blue succeeded", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "blue_green", blue_group: ["d01", "d02"], green_group: ["d03", "d04"] });
    await start(h, id);
    expect(await inFlight(h, id)).toEqual(["d01", "d02"]);
    await settle(h, f, id, (d) => (d === "d01" ? "completed" : "silent"));
    expect(await inFlight(h, id)).toEqual(["d02"]);
    await settle(h, f, id);
    expect(await inFlight(h, id)).toEqual(["d03", "d04"]);
    await settle(h, f, id);
    expect(await campaign(h, id)).toMatchObject({ status: "completed", completed_devices: 4 });

    const id2 = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "blue_green", blue_group: ["d05"], green_group: ["d06"] });
    await start(h, id2);
    await settle(h, f, id2, () => "failed");
    expect(await campaign(h, id2)).toMatchObject({ status: "paused", failed_devices: 1, pending_devices: 1 });
    expect((await devices(h, id2)).find((d) => d.device_id === "d06")!.state).toBe("pending");
  });

  it("blue_green accepts group names and device ids; target_groups resolve through groups filled over the API", async () => {
    expect((await api(h, "POST", "/api/v1/groups", { ...asAdmin(h), body: { name: "blue", device_ids: ["d01", "d02"] } })).status).toBe(201);
    expect((await api(h, "POST", "/api/v1/groups", { ...asAdmin(h), body: { name: "green", device_ids: ["d03"] } })).status).toBe(201);
    expect((await api(h, "POST", "/api/v1/groups/green/devices", { ...asAdmin(h), body: { device_ids: ["d04"] } })).body.device_ids).toEqual(["d03", "d04"]);
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "blue_green", blue_group: ["blue", "d07"], green_group: ["green"], target_devices: ["d09"] });
    expect((await campaign(h, id)).total_devices).toBe(6);
    const s = await start(h, id);
    expect(s.stages.map((x: any) => [x.name, x.total_devices])).toEqual([["blue", 3], ["green", 3]]);
    expect(await inFlight(h, id)).toEqual(["d01", "d02", "d07"]);
    expect((await devices(h, id)).filter((d) => d.stage === 1).map((d) => d.device_id)).toEqual(["d09", "d03", "d04"]);
    const id2 = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_groups: ["green"], target_devices: ["d09"] });
    expect((await start(h, id2)).total_devices).toBe(3);
  });

  it("blue_green refuses a group that does not exist, naming it", async () => {
    await api(h, "POST", "/api/v1/groups", { ...asAdmin(h), body: { name: "blue", device_ids: ["d01"] } });
    const r = await api(h, "POST", "/api/v1/campaigns", {
      ...asAdmin(h), body: { name: "x", firmware_id: f.fwNew.firmware_id, deployment_strategy: "blue_green", blue_group: ["blue", "bleu"], green_group: ["d02", "greeen"] },
    });
    expect([r.status, r.body.error.code]).toEqual([400, "UNKNOWN_GROUP"]);
    expect(r.body.error.message).toBe("blue_group/green_group: no group or device named bleu, greeen");
    expect(r.body.error.details).toEqual({ groups: ["bleu", "greeen"] });
    expect((await api(h, "GET", "/api/v1/campaigns", asAdmin(h))).body.total).toBe(0);
  });

  it("blue_green plans from the groups it expands itself", () => {
    const groups: Record<string, string[]> = { racks: ["a1", "a2"], empty: [] };
    const fleet: FleetView = { groupMembers: (n) => groups[n] ?? null, deviceKnown: (id) => ["b1", "c1"].includes(id) };
    const cfg = normalizeConfig({ name: "x", firmware_id: "fw", deployment_strategy: "blue_green", blue_group: ["racks", "empty"], green_group: ["b1"], target_devices: ["c1"] });
    const bg = strategyFor("blue_green");
    expect(bg.validate(cfg, fleet)).toBeNull();
    expect(bg.extraTargets!(cfg, fleet)).toEqual(["a1", "a2", "b1"]);
    expect(bg.plan(cfg, ["c1", "a1", "a2", "b1"], fleet)).toEqual([
      { name: "blue", deviceIds: ["a1", "a2"], soakMinutes: 0 },
      { name: "green", deviceIds: ["c1", "b1"], soakMinutes: 0 },
    ]);
    expect(bg.validate({ ...cfg, green_group: ["b1", "ghosts"] }, fleet)).toMatchObject({ code: "UNKNOWN_GROUP", details: { groups: ["ghosts"] } });
  });
});

describe("scheduled_start holds any strategy", () => {
  it("staged: nothing before scheduled_start, then the batches run one after the other", async () => {
    const at = new Date(h.clock.now() + 3 * 3600_000).toISOString();
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "staged", scheduled_start: at, target_devices: f.ids.slice(0, 4), batch_size: 2 });
    const s = await start(h, id);
    expect(s).toMatchObject({ status: "scheduled", started_at: null, in_progress_devices: 0, pending_devices: 4 });
    expect(s.stages.map((x: any) => [x.name, x.state])).toEqual([["batch 1", "pending"], ["batch 2", "pending"]]);
    h.clock.advanceMinutes(179);
    expect(await campaign(h, id)).toMatchObject({ status: "scheduled", in_progress_devices: 0 });
    expect((await api(h, "GET", "/api/v1/devices/d01/available-updates", { apiKey: f.keys.get("d01") })).body.update_available).toBe(false);
    h.clock.advanceMinutes(1);
    expect(await campaign(h, id)).toMatchObject({ status: "in_progress", started_at: at });
    expect(await inFlight(h, id)).toEqual(["d01", "d02"]);
    await settle(h, f, id);
    expect(await inFlight(h, id)).toEqual(["d03", "d04"]);
    await settle(h, f, id);
    expect(await campaign(h, id)).toMatchObject({ status: "completed", completed_devices: 4 });
  });

  it("canary: nothing before scheduled_start; the soak counts from the canary's end", async () => {
    const start0 = h.clock.now();
    const at = new Date(start0 + 2 * 3600_000).toISOString();
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "canary", scheduled_start: at, target_devices: f.ids, canary_percentage: 10, canary_duration_minutes: 60, batch_size: 18 });
    expect((await start(h, id)).status).toBe("scheduled");
    h.clock.advanceMinutes(119);
    expect(await inFlight(h, id)).toEqual([]);
    h.clock.advanceMinutes(1);
    expect(await inFlight(h, id)).toEqual(["d01", "d02"]);
    await settle(h, f, id);
    const soaking = await campaign(h, id);
    expect(soaking.stages[0]).toMatchObject({ name: "canary", state: "soaking", soak_until: new Date(start0 + 3 * 3600_000).toISOString() });
    h.clock.advanceMinutes(59);
    expect(await inFlight(h, id)).toEqual([]);
    h.clock.advanceMinutes(1);
    expect(await inFlight(h, id)).toHaveLength(18);
  });

  it("the HOWTO's campaign (staged, scheduled_start 2025-10-01T00:00:00Z) waits for its start time", async () => {
    const howto = readFileSync(new URL("../fixtures/ota-service-howto.md", import.meta.url), "utf8");
    const body = JSON.parse(/curl -X POST http:\/\/localhost:8221\/api\/v1\/campaigns \\[\s\S]*?-d '(\{[\s\S]*?\})'/.exec(howto)![1]!);
    expect(body).toMatchObject({ deployment_strategy: "staged", scheduled_start: "2025-10-01T00:00:00Z", requires_approval: true });
    for (const d of ["device1", "device2", "device3"]) f.keys.set(d, await registerDevice(h, d));
    await api(h, "POST", "/api/v1/groups", { ...asAdmin(h), body: { name: "production_fleet", device_ids: f.ids.slice(0, 5) } });
    h.clock.set(Date.parse(body.scheduled_start) - 30 * 60_000);
    const id = await createCampaign(h, body);
    await api(h, "POST", `/api/v1/campaigns/${id}/approve`, { ...asAdmin(h), body: {} });
    expect(await start(h, id)).toMatchObject({ status: "scheduled", total_devices: 2, in_progress_devices: 0 }); // 25 % of 8
    h.clock.advanceMinutes(29);
    expect((await campaign(h, id)).status).toBe("scheduled");
    h.clock.advanceMinutes(1);
    expect(await campaign(h, id)).toMatchObject({ status: "in_progress", started_at: new Date(body.scheduled_start).toISOString() });
    expect(await inFlight(h, id)).toEqual(["device1", "device2"]);
  });
});
