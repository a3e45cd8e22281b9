import { afterEach, beforeEach, describe, expect, it } from "vitest";
import nacl from "tweetnacl";
import { base64Decode, canonicalBytes } from "../../device/protocol";
import { api, asAdmin, connectMqtt, eventually, report, startHarness, type Harness } from "./harness";
import { campaign, createCampaign, devices, inFlight, settle, setupFleet, start, type Fleet } from "./fleet";

let h: Harness;
let f: Fleet;
beforeEach(async () => {
  h = await startHarness();
  f = await setupFleet(h, 20);
});
afterEach(() => h.close());

describe("failure threshold and auto-rollback", () => {
  it("waits for the minimum sample: one early failure in a large campaign does not stop it", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids, max_concurrent_updates: 5, failure_threshold_percent: 10 });
    await start(h, id);
    await settle(h, f, id, (d) => (d === "d01" ? "failed" : "completed")); // 1 of 5 finished failed: 20 % but sample < 10
    expect((await campaign(h, id)).status).toBe("in_progress");
    await settle(h, f, id); // 1 of 10 = 10 %: not above the threshold
    expect(await campaign(h, id)).toMatchObject({ status: "in_progress", failed_devices: 1, completed_devices: 9 });
    await settle(h, f, id, (d) => (d === "d11" || d === "d12" ? "failed" : "completed")); // d12 fails after the pause
    const c = await campaign(h, id);
    expect(c).toMatchObject({ status: "paused", failed_devices: 3, pending_devices: 5 });
    // Checked when d11's failure arrived: 2 of 11 finished.
    expect(c.pause_reason).toBe("failure rate 18.2% > 10% over 11 finished devices");
    expect(c.rollback_reason).toBeNull(); // auto_rollback off
    expect(h.logs.join("")).toContain(`campaign_paused campaign_id=${id}`);
    // Resuming accepts the failures so far: the campaign goes on, and the next failure pauses it again.
    const resumed = await start(h, id);
    expect(resumed).toMatchObject({ status: "in_progress", in_progress_devices: 5 });
    await settle(h, f, id, (d) => (d === "d16" ? "failed" : "completed"));
    expect((await campaign(h, id)).status).toBe("failed"); // 4 of 20 and nothing left to dispatch
  });

  it("with auto_rollback, sends every device that installed the firmware a signed rollback to its previous firmware", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids.slice(0, 7), max_concurrent_updates: 4, auto_rollback: true, failure_threshold_percent: 10, failure_min_sample: 4 });
    const mqttClient = await connectMqtt(h, "d01", f.keys.get("d01")!);
    const seen: any[] = [];
    mqttClient.on("message", (_t, payload) => seen.push(JSON.parse(payload.toString())));
    await mqttClient.subscribeAsync("devices/d01/ota", { qos: 1 });
    try {
      await start(h, id);
      await settle(h, f, id, (d) => (d === "d03" ? "failed" : d === "d04" ? "silent" : "completed")); // 1 failure of 3 finished: sample < 4
      await settle(h, f, id, (d) => (d === "d04" ? "silent" : "completed")); // d05-d07 complete; d04 stays silent
      expect(await campaign(h, id)).toMatchObject({ status: "in_progress", completed_devices: 5, failed_devices: 1, in_progress_devices: 1 });
      h.clock.advanceMinutes(121); // d04 never reports (a bricked device): timeout → 2 of 7 = 28.6 %
      const c = await campaign(h, id);
      expect(c.status).toBe("failed"); // nothing left to update, so it ends instead of pausing
      expect(c.rollback_reason).toBe("auto: failure rate 28.6% > 10% over 7 finished devices");
      const rows = await devices(h, id);
      expect(rows.filter((d) => d.rollback_update_id).map((d) => d.device_id)).toEqual(["d01", "d02", "d05", "d06", "d07"]);
      expect((await api(h, "GET", `/api/v1/updates/${rows.find((d) => d.device_id === "d04")!.update_id}`, asAdmin(h))).body.error.code).toBe("TIMEOUT");
      const msg = await eventually(() => seen.find((m) => m.action === "rollback"));
      expect(msg).toMatchObject({ action: "rollback", version: "1.0.0", mandatory: true });
      // The device gets a signed manifest flagged rollback, for its previous firmware.
      const env = (await api(h, "GET", "/api/v1/devices/d01/available-updates", { apiKey: f.keys.get("d01") })).body;
      expect(env.manifest).toMatchObject({ rollback: true, version: "1.0.0", firmware_id: f.fwOld.firmware_id, update_id: msg.update_id });
      const pub = (await api(h, "GET", "/api/v1/keys", asAdmin(h))).body.keys[0].public_key;
      expect(nacl.sign.detached.verify(canonicalBytes(env.manifest), base64Decode(env.signature), base64Decode(pub))).toBe(true);
      await report(h, f.keys.get("d01")!, msg.update_id, "downloading", "installing", "completed");
      const after = await campaign(h, id);
      expect(after.rolled_back_devices).toBe(1);
      expect((await api(h, "GET", "/api/v1/devices/d01", asAdmin(h))).body.current_version).toBe("1.0.0");
    } finally {
      await mqttClient.endAsync();
    }
  });

  it("rolls back devices that finish installing after the auto-rollback, too", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids.slice(0, 4), auto_rollback: true, failure_threshold_percent: 10, failure_min_sample: 2, max_concurrent_updates: 3 });
    await start(h, id);
    await settle(h, f, id, (d) => (d === "d01" ? "completed" : d === "d02" ? "failed" : "silent")); // d04 took d01's slot
    const c = await campaign(h, id);
    expect(c).toMatchObject({ status: "failed", in_progress_devices: 2 });
    expect((await devices(h, id)).filter((d) => d.rollback_update_id).map((d) => d.device_id)).toEqual(["d01"]);
    await settle(h, f, id); // d03 and d04 were in flight and now complete
    expect((await devices(h, id)).filter((d) => d.rollback_update_id).map((d) => d.device_id)).toEqual(["d01", "d03", "d04"]);
  });

  it("rollback_triggers limit what triggers the automatic rollback", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids.slice(0, 4), auto_rollback: true, rollback_triggers: ["health_check"], failure_min_sample: 2, max_concurrent_updates: 2 });
    await start(h, id);
    await settle(h, f, id, (d) => (d === "d01" ? "completed" : "failed")); // CHECKSUM_MISMATCH is not a health check failure
    const c = await campaign(h, id);
    expect(c.status).toBe("paused");
    expect(c.rollback_reason).toBeNull();
    const id2 = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids.slice(4, 8), auto_rollback: true, rollback_triggers: ["health_check"], failure_min_sample: 2, max_concurrent_updates: 2 });
    await start(h, id2);
    await settle(h, f, id2, (d) => (d === "d05" ? "completed" : "rolled_back")); // self-test failure
    expect((await campaign(h, id2)).rollback_reason).toMatch(/^auto:/);
  });
});

describe("campaign lifecycle", () => {
  it("requires approval when asked, pauses, resumes, cancels", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids.slice(0, 6), requires_approval: true, max_concurrent_updates: 2 });
    const noApproval = await api(h, "POST", `/api/v1/campaigns/${id}/start`, asAdmin(h));
    expect([noApproval.status, noApproval.body.error.code]).toEqual([409, "APPROVAL_REQUIRED"]);
    const ap = await api(h, "POST", `/api/v1/campaigns/${id}/approve`, { ...asAdmin(h), body: { approval_comment: "Approved after testing in staging environment" } });
    expect(ap.body).toMatchObject({ approved: true, approval_comment: "Approved after testing in staging environment" });
    expect((await api(h, "POST", `/api/v1/campaigns/${id}/approve`, { ...asAdmin(h), body: {} })).status).toBe(409);
    await start(h, id);
    expect((await api(h, "POST", `/api/v1/campaigns/${id}/start`, asAdmin(h))).status).toBe(409);
    const p = await api(h, "POST", `/api/v1/campaigns/${id}/pause`, { ...asAdmin(h), body: { reason: "Investigating reported issues" } });
    expect(p.body).toMatchObject({ status: "paused", pause_reason: "Investigating reported issues" });
    await settle(h, f, id);
    expect(await inFlight(h, id)).toEqual([]); // paused: nothing new dispatched
    await start(h, id);
    expect(await inFlight(h, id)).toEqual(["d03", "d04"]);
    const c = await api(h, "POST", `/api/v1/campaigns/${id}/cancel`, { ...asAdmin(h), body: { reason: "Critical bug discovered" } });
    expect(c.body).toMatchObject({ status: "cancelled", cancel_reason: "Critical bug discovered", completed_devices: 2, cancelled_devices: 4 });
    const d3 = (await devices(h, id)).find((d) => d.device_id === "d03")!;
    expect((await api(h, "GET", `/api/v1/updates/${d3.update_id}`, asAdmin(h))).body.status).toBe("cancelled");
    expect((await api(h, "POST", `/api/v1/campaigns/${id}/cancel`, { ...asAdmin(h), body: {} })).status).toBe(409);
    expect((await api(h, "POST", `/api/v1/campaigns/${id}/pause`, { ...asAdmin(h), body: {} })).status).toBe(409);
  });

  it("manual rollback of chosen devices", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: ["d01", "d02", "d03"] });
    await start(h, id);
    await settle(h, f, id, (d) => (d === "d03" ? "silent" : "completed"));
    const r = await api(h, "POST", `/api/v1/campaigns/${id}/rollback`, { ...asAdmin(h), body: { reason: "High failure rate detected", target_devices: ["d01", "d03"] } });
    expect(r.status).toBe(200);
    expect(r.body.rollback_updates.map((x: any) => x.device_id)).toEqual(["d01"]);
    expect(r.body.skipped).toEqual([{ device_id: "d03", reason: "device is in_progress, not running the campaign firmware" }]);
    expect(r.body.status).toBe("paused");
    expect((await api(h, "GET", `/api/v1/updates/${r.body.rollback_updates[0].update_id}`, asAdmin(h))).body).toMatchObject({ rollback: true, to_version: "1.0.0", campaign_id: id });
    const bad = await api(h, "POST", `/api/v1/campaigns/${id}/rollback`, { ...asAdmin(h), body: { target_devices: ["d19"] } });
    expect([bad.status, bad.body.error.code]).toEqual([400, "DEVICE_NOT_IN_CAMPAIGN"]);
  });

  it("a rollback naming a target that rollout_percentage left out says it was never updated", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: ["d01", "d02", "d03", "d04"], rollout_percentage: 50 });
    await start(h, id);
    await settle(h, f, id, () => "completed");
    const r = await api(h, "POST", `/api/v1/campaigns/${id}/rollback`, { ...asAdmin(h), body: { reason: "High failure rate detected", target_devices: ["d01", "d04"] } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.rollback_updates.map((x: any) => x.device_id)).toEqual(["d01"]);
    expect(r.body.skipped).toEqual([{ device_id: "d04", reason: expect.stringMatching(/^never updated/) }]);
  });

  it("validates campaigns with 4xx errors", async () => {
    const post = (body: Record<string, unknown>) => api(h, "POST", "/api/v1/campaigns", { ...asAdmin(h), body: { name: "x", firmware_id: f.fwNew.firmware_id, ...body } });
    expect((await post({ deployment_strategy: "yolo" })).status).toBe(400);
    expect((await post({ deployment_strategy: "scheduled" })).body.error.message).toMatch(/scheduled_start/);
    expect((await post({ deployment_strategy: "blue_green", blue_group: ["d01"] })).status).toBe(400);
    expect((await post({ scheduled_start: "tomorrow-ish" })).status).toBe(400);
    expect((await post({ rollout_percentage: 0 })).status).toBe(400);
    expect((await post({ firmware_id: "fw_missing" })).status).toBe(404);
    expect((await post({ surprise: 1 })).status).toBe(400);
    const typo = await post({ target_devices: ["d01", "d0l"], target_groups: ["prodution"] });
    expect([typo.status, typo.body.error.code, typo.body.error.details]).toEqual([404, "TARGET_NOT_FOUND", { devices: ["d0l"], groups: ["prodution"] }]);
    expect(typo.body.error.message).toMatch(/d0l.*prodution/);
    const empty = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_groups: ["empty_group"], create_missing: true });
    const r = await api(h, "POST", `/api/v1/campaigns/${empty}/start`, asAdmin(h));
    expect([r.status, r.body.error.code]).toEqual([409, "NO_TARGET_DEVICES"]);
    expect((await api(h, "GET", "/api/v1/campaigns/camp_nope", asAdmin(h))).status).toBe(404);
  });

  it("skips devices that cannot take the firmware and, with create_missing, creates waiting records for unknown ids", async () => {
    await api(h, "POST", "/api/v1/devices", { ...asAdmin(h), body: { device_id: "other-model", device_model: "OTHER" } });
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: ["d01", "other-model", "brand-new"], create_missing: true });
    expect((await api(h, "GET", "/api/v1/devices/brand-new", asAdmin(h))).body.status).toBe("waiting");
    const s = await start(h, id);
    expect(s).toMatchObject({ skipped_devices: 1, in_progress_devices: 2 });
    expect((await devices(h, id)).find((d) => d.device_id === "other-model")!.note).toBe("MODEL_MISMATCH");
  });

  it("waits for a device busy with another update, then skips it after timeout_minutes", async () => {
    const direct = (await api(h, "POST", "/api/v1/devices/d01/update", { ...asAdmin(h), body: { firmware_id: f.fwNew.firmware_id } })).body;
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: ["d01", "d02"], timeout_minutes: 30 });
    await start(h, id);
    expect((await devices(h, id)).map((d) => d.state)).toEqual(["pending", "in_progress"]);
    h.clock.advanceMinutes(29);
    expect((await devices(h, id))[0]!.state).toBe("pending");
    h.clock.advanceMinutes(1);
    expect((await devices(h, id))[0]).toMatchObject({ state: "skipped", note: `BUSY:${direct.update_id}` });
  });

  it("reports campaign stats and lists campaigns", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: ["d01", "d02", "d03", "d04"], failure_threshold_percent: 50 });
    await start(h, id);
    for (const d of ["d01", "d02", "d03", "d04"]) await report(h, f.keys.get(d)!, (await devices(h, id)).find((x) => x.device_id === d)!.update_id!, "downloading");
    h.clock.advance(90_000);
    await settle(h, f, id, (d) => (d === "d04" ? "failed" : "completed"));
    const s = (await api(h, "GET", `/api/v1/stats/campaigns/${id}`, asAdmin(h))).body;
    expect(s).toMatchObject({ status: "completed", total_devices: 4, completed_devices: 3, failed_devices: 1, success_rate: 75, failures_by_error_code: { CHECKSUM_MISMATCH: 1 }, mean_duration_seconds: 90 });
    expect(s.events.map((e: any) => e.type)).toEqual(expect.arrayContaining(["created", "started", "stage_started", "completed"]));
    expect((await api(h, "GET", "/api/v1/stats/campaigns/camp_nope", asAdmin(h))).status).toBe(404);
    const list = await api(h, "GET", "/api/v1/campaigns?status=completed", asAdmin(h));
    expect(list.body.campaigns.map((c: any) => c.campaign_id)).toEqual([id]);
  });

  it("campaign totals, stage counts and stats count devices by one definition", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "staged", target_devices: f.ids.slice(0, 10), batch_size: 6, failure_threshold_percent: 100 });
    await start(h, id);
    const outcome = { d04: "failed", d05: "rolled_back", d06: "silent" } as const;
    await settle(h, f, id, (d) => outcome[d as keyof typeof outcome] ?? "completed");
    const rb = await api(h, "POST", `/api/v1/campaigns/${id}/rollback`, { ...asAdmin(h), body: { reason: "operator", target_devices: ["d01"] } });
    await report(h, f.keys.get("d01")!, rb.body.rollback_updates[0].update_id, "downloading", "installing", "completed");
    await expectCountsAgree(id, { completed: 2, failed: 1, rolled_back: 2, in_progress: 1, pending: 4, cancelled: 0 });
    await api(h, "POST", `/api/v1/campaigns/${id}/cancel`, { ...asAdmin(h), body: { reason: "enough" } });
    const c = await expectCountsAgree(id, { completed: 2, failed: 1, rolled_back: 2, in_progress: 0, pending: 0, cancelled: 5 });
    expect(c).toMatchObject({ rolled_back_by_device: 1, rolled_back_by_server: 1, failure_rate_percent: 40 }); // d04 and d05 of 5 finished
    expect(c.stages.map((s: any) => [s.completed, s.failed, s.rolled_back, s.cancelled])).toEqual([[2, 1, 2, 1], [0, 0, 0, 4]]);
  });
});

type Outcomes = Record<"completed" | "failed" | "rolled_back" | "in_progress" | "pending" | "cancelled", number>;

/** The campaign shows `want`; its stages add up to it; its stats' update counts and the fleet stats say the same. */
async function expectCountsAgree(id: string, want: Outcomes): Promise<any> {
  const c = await campaign(h, id);
  const s = (await api(h, "GET", `/api/v1/stats/campaigns/${id}`, asAdmin(h))).body;
  const fleet = (await api(h, "GET", "/api/v1/stats", asAdmin(h))).body;
  const updates = s.updates_by_status;
  const neverDispatched = (await devices(h, id)).filter((d) => d.update_id === null && d.state === "cancelled").length;
  for (const k of Object.keys(want) as Array<keyof Outcomes>) {
    expect(c[`${k}_devices`], k).toBe(want[k]);
    expect(s[`${k}_devices`], k).toBe(want[k]);
    expect(c.stages.reduce((n: number, st: any) => n + st[k], 0), `stages ${k}`).toBe(want[k]);
  }
  expect([updates.completed, updates.failed, updates.rolled_back]).toEqual([want.completed, want.failed, want.rolled_back]);
  expect(updates.scheduled + updates.downloading + updates.installing).toBe(want.in_progress);
  expect(updates.cancelled + neverDispatched).toBe(want.cancelled);
  expect(c.rolled_back_by_device + c.rolled_back_by_server).toBe(c.rolled_back_devices);
  expect([s.rolled_back_by_device, s.rolled_back_by_server]).toEqual([c.rolled_back_by_device, c.rolled_back_by_server]);
  for (const st of Object.keys(fleet.updates_by_status)) expect(fleet.updates_by_status[st], st).toBe(updates[st] + s.rollback_updates_by_status[st]);
  return c;
}
