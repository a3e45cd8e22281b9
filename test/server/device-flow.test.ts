import { afterAll, beforeAll, describe, expect, it } from "vitest";
import nacl from "tweetnacl";
import { base64Decode, canonicalBytes, type SignedUpdateEnvelope } from "../../device/protocol";
import { api, asAdmin, randomBytes, registerDevice, report, startHarness, uploadFirmware, type Harness } from "./harness";

async function verifyEnvelope(h: Harness, env: SignedUpdateEnvelope): Promise<boolean> {
  const keys = (await api(h, "GET", "/api/v1/keys", asAdmin(h))).body.keys as Array<{ key_id: string; public_key: string }>;
  const key = keys.find((k) => k.key_id === env.key_id);
  if (!key) return false;
  return nacl.sign.detached.verify(canonicalBytes(env.manifest), base64Decode(env.signature), base64Decode(key.public_key));
}

describe("device-facing flow", () => {
  let h: Harness;
  let key: string;
  let fw: any;
  let fwOld: any;
  beforeAll(async () => {
    h = await startHarness();
    fwOld = await uploadFirmware(h, { version: "1.1.0" }, randomBytes(5000, 3));
    fw = await uploadFirmware(h, { version: "1.2.0" }, randomBytes(8000, 4));
    key = await registerDevice(h, "dev1", { current_version: "1.1.0" });
  });
  afterAll(() => h.close());

  it("offers nothing until an update is assigned, and records each contact", async () => {
    const r = await api(h, "GET", "/api/v1/devices/dev1/available-updates?current_version=1.1.0&device_model=IOT-2024&hardware_version=1.2", { apiKey: key });
    expect(r.body).toEqual({ update_available: false });
    const d = await api(h, "GET", "/api/v1/devices/dev1", asAdmin(h));
    expect(d.body).toMatchObject({ current_version: "1.1.0", device_model: "IOT-2024", hardware_version: "1.2", status: "registered", current_update: null });
    expect(d.body.last_contact_at).toBe(new Date(h.clock.now()).toISOString());
  });

  let updateId: string;
  it("assigns a direct update and serves a manifest signed over the canonical form", async () => {
    const r = await api(h, "POST", "/api/v1/devices/dev1/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id, priority: "high", force: false, pre_update_commands: ["backup_config"], post_update_commands: ["verify_config"] } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ device_id: "dev1", firmware_id: fw.firmware_id, status: "scheduled", from_version: "1.1.0", to_version: "1.2.0", priority: "high" });
    updateId = r.body.update_id;
    const env = (await api(h, "GET", "/api/v1/devices/dev1/available-updates?current_version=1.1.0", { apiKey: key })).body as SignedUpdateEnvelope;
    expect(env.update_available).toBe(true);
    expect(env.manifest).toMatchObject({
      manifest_version: 1, update_id: updateId, device_id: "dev1", firmware_id: fw.firmware_id, version: "1.2.0", size: 8000, sha256: fw.checksum_sha256,
      device_model: "IOT-2024", chip_id: null, secure_version: 0, rollback: false, mandatory: false, priority: "high",
      pre_update_commands: ["backup_config"], post_update_commands: ["verify_config"],
      // No --public-url: the address this device reached (the harness listens on 127.0.0.1), not the file_url's localhost.
      download_url: fw.file_url.replace("//localhost:", "//127.0.0.1:"),
      issued_at: new Date(h.clock.now()).toISOString(), expires_at: new Date(h.clock.now() + 24 * 3600_000).toISOString(),
    });
    expect(env.signature_alg).toBe("ed25519");
    expect(await verifyEnvelope(h, env)).toBe(true);
    const tampered = { ...env, manifest: { ...env.manifest, sha256: "0".repeat(64) } };
    expect(await verifyEnvelope(h, tampered)).toBe(false);
    const busy = await api(h, "POST", "/api/v1/devices/dev1/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } });
    expect([busy.status, busy.body.error.code]).toEqual([409, "UPDATE_IN_PROGRESS"]);
  });

  it("accepts status reports idempotently and rejects impossible transitions", async () => {
    const [a, dup] = await report(h, key, updateId, { status: "downloading", progress: 10, sequence: 1 }, { status: "downloading", progress: 99, sequence: 1 });
    expect(a.body).toMatchObject({ accepted: true, duplicate: false });
    expect(dup.body).toMatchObject({ accepted: false, duplicate: true });
    expect(dup.body.update.progress_percentage).toBe(10); // the repeat was ignored
    h.clock.advance(30_000);
    await report(h, key, updateId, { status: "installing", progress: 60, sequence: 2 });
    const back = await api(h, "POST", `/api/v1/updates/${updateId}/status`, { apiKey: key, body: { status: "downloading", sequence: 3 } });
    expect([back.status, back.body.error.code]).toEqual([409, "INVALID_TRANSITION"]);
    const junk = await api(h, "POST", `/api/v1/updates/${updateId}/status`, { apiKey: key, body: { status: "exploded" } });
    expect(junk.status).toBe(400);
    const badProgress = await api(h, "POST", `/api/v1/updates/${updateId}/status`, { apiKey: key, body: { status: "installing", progress: 140 } });
    expect(badProgress.status).toBe(400);
    h.clock.advance(60_000);
    const [done, again] = await report(h, key, updateId, { status: "completed", sequence: 4, timestamp: "2025-10-01T00:01:30Z" }, { status: "completed" });
    expect(done.body.update).toMatchObject({ status: "completed", progress_percentage: 100, duration_seconds: 90 });
    expect(again.body.duplicate).toBe(true);
    const late = await api(h, "POST", `/api/v1/updates/${updateId}/status`, { apiKey: key, body: { status: "failed" } });
    expect(late.status).toBe(409);
    const dev = await api(h, "GET", "/api/v1/devices/dev1", asAdmin(h));
    expect(dev.body).toMatchObject({ current_version: "1.2.0", current_firmware_id: fw.firmware_id, previous_version: "1.1.0" });
    expect((await api(h, "GET", "/api/v1/devices/dev1/available-updates", { apiKey: key })).body).toEqual({ update_available: false });
  });

  it("takes the versions a device reports with its final status", async () => {
    const k = await registerDevice(h, "vers", { current_version: null }); // registered without a version
    const u = (await api(h, "POST", "/api/v1/devices/vers/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } })).body;
    expect(u.from_version).toBeNull();
    await report(h, k, u.update_id, "installing", { status: "completed", from_version: "1.0.7", to_version: "1.2.0-custom" });
    expect((await api(h, "GET", `/api/v1/updates/${u.update_id}`, asAdmin(h))).body.from_version).toBe("1.0.7");
    expect((await api(h, "GET", "/api/v1/devices/vers", asAdmin(h))).body).toMatchObject({ current_version: "1.2.0-custom", previous_version: "1.0.7" });
    expect(h.logs.join("")).toMatch(/update_version_mismatch device_id=vers update_id=\S+ expected=1.2.0 reported=1.2.0-custom/);
  });

  it("keeps a device from reporting on another device's update", async () => {
    const other = await registerDevice(h, "dev2", { current_version: "1.1.0" });
    const u = (await api(h, "POST", "/api/v1/devices/dev2/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } })).body;
    const r = await api(h, "POST", `/api/v1/updates/${u.update_id}/status`, { apiKey: key, body: { status: "failed" } });
    expect(r.status).toBe(403);
    expect((await api(h, "POST", `/api/v1/updates/${u.update_id}/status`, { apiKey: other, body: { status: "downloading" } })).status).toBe(200);
    expect((await api(h, "POST", "/api/v1/updates/upd_nope/status", { apiKey: other, body: { status: "downloading" } })).status).toBe(404);
  });

  it("rolls a device back with a signed rollback manifest and marks the undone update rolled_back", async () => {
    const r = await api(h, "POST", "/api/v1/devices/dev1/rollback", { ...asAdmin(h), body: { target_version: "1.1.0", reason: "Device experiencing issues with new firmware" } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ rollback: true, to_version: "1.1.0", firmware_id: fwOld.firmware_id, reverts_update_id: updateId, mandatory: true });
    const env = (await api(h, "GET", "/api/v1/devices/dev1/available-updates", { apiKey: key })).body;
    expect(env.manifest).toMatchObject({ rollback: true, version: "1.1.0" });
    expect(await verifyEnvelope(h, env)).toBe(true);
    await report(h, key, r.body.update_id, "downloading", "installing", "completed");
    expect((await api(h, "GET", `/api/v1/updates/${updateId}`, asAdmin(h))).body.status).toBe("rolled_back");
    expect((await api(h, "GET", "/api/v1/devices/dev1", asAdmin(h))).body.current_version).toBe("1.1.0");
    expect((await api(h, "POST", "/api/v1/devices/dev1/rollback", { ...asAdmin(h), body: { target_version: "0.0.1" } })).status).toBe(404);
    expect((await api(h, "POST", "/api/v1/devices/ghost/rollback", { ...asAdmin(h), body: { target_version: "1.1.0" } })).status).toBe(404);
  });

  it("lists a device's update history newest first, with limit", async () => {
    const r = await api(h, "GET", "/api/v1/devices/dev1/updates?limit=10", asAdmin(h));
    expect(r.body.total).toBe(2);
    expect(r.body.updates.map((u: any) => [u.to_version, u.status])).toEqual([["1.1.0", "completed"], ["1.2.0", "rolled_back"]]);
    expect((await api(h, "GET", "/api/v1/devices/dev1/updates?limit=1", asAdmin(h))).body.updates).toHaveLength(1);
    expect((await api(h, "GET", "/api/v1/devices/nobody/updates", asAdmin(h))).status).toBe(404);
  });

  it("cancels and retries updates", async () => {
    const u = (await api(h, "POST", "/api/v1/devices/dev1/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } })).body;
    const c = await api(h, "POST", `/api/v1/updates/${u.update_id}/cancel`, { ...asAdmin(h), body: { reason: "User requested cancellation" } });
    expect(c.body).toMatchObject({ status: "cancelled", cancel_reason: "User requested cancellation" });
    expect((await api(h, "POST", `/api/v1/updates/${u.update_id}/cancel`, { ...asAdmin(h), body: {} })).status).toBe(409);
    expect((await api(h, "POST", `/api/v1/updates/${u.update_id}/status`, { apiKey: key, body: { status: "downloading" } })).body.error.code).toBe("UPDATE_CANCELLED");
    const retry = await api(h, "POST", `/api/v1/updates/${u.update_id}/retry`, { ...asAdmin(h), body: { max_retries: 3, retry_delay: 300 } });
    expect(retry.status).toBe(201);
    expect(retry.body).toMatchObject({ status: "scheduled", attempt: 2, retry_of: u.update_id, max_retries: 3, retry_delay: 300 });
    expect((await api(h, "POST", `/api/v1/updates/${u.update_id}/retry`, { ...asAdmin(h), body: {} })).body.error.code).toBe("ALREADY_RETRIED");
    expect((await api(h, "POST", `/api/v1/updates/${retry.body.update_id}/retry`, { ...asAdmin(h), body: {} })).body.error.code).toBe("NOT_RETRYABLE");
    // Automatic retries: a failure is retried after retry_delay, up to max_retries times.
    await report(h, key, retry.body.update_id, { status: "failed", error_code: "DOWNLOAD_FAILED" });
    h.clock.advance(299_000);
    expect((await api(h, "GET", `/api/v1/updates/${retry.body.update_id}`, asAdmin(h))).body.retried_by).toBeNull();
    h.clock.advance(2_000);
    const third = (await api(h, "GET", `/api/v1/updates/${retry.body.update_id}`, asAdmin(h))).body.retried_by;
    expect(third).toMatch(/^upd_/);
    expect((await api(h, "GET", `/api/v1/updates/${third}`, asAdmin(h))).body).toMatchObject({ attempt: 3, max_retries: 2, status: "scheduled" });
    // Non-retryable codes are not retried automatically.
    await report(h, key, third, { status: "failed", error_code: "SIGNATURE_INVALID" });
    h.clock.advance(3_600_000);
    expect((await api(h, "GET", `/api/v1/updates/${third}`, asAdmin(h))).body.retried_by).toBeNull();
  });

  it("fails an update whose device stays silent past its timeout", async () => {
    const k = await registerDevice(h, "silent", { current_version: "1.0.0" });
    const u = (await api(h, "POST", "/api/v1/devices/silent/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id, timeout_minutes: 30 } })).body;
    await report(h, k, u.update_id, "downloading");
    h.clock.advanceMinutes(29);
    expect((await api(h, "GET", `/api/v1/updates/${u.update_id}`, asAdmin(h))).body.status).toBe("downloading");
    h.clock.advanceMinutes(2);
    const after = (await api(h, "GET", `/api/v1/updates/${u.update_id}`, asAdmin(h))).body;
    expect(after.status).toBe("failed");
    expect(after.error.code).toBe("TIMEOUT");
    expect(h.logs.join("")).toContain(`update_failed device_id=silent update_id=${u.update_id} error_code=TIMEOUT`);
    // Without timeout_minutes a direct update waits for an offline device indefinitely.
    await registerDevice(h, "offline", { current_version: "1.0.0" });
    const patient = (await api(h, "POST", "/api/v1/devices/offline/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } })).body;
    h.clock.advanceMinutes(7 * 24 * 60);
    expect((await api(h, "GET", `/api/v1/updates/${patient.update_id}`, asAdmin(h))).body.status).toBe("scheduled");
  });

  it("bulk-updates devices with a per-device outcome", async () => {
    await registerDevice(h, "b1", { current_version: "1.0.0" });
    await registerDevice(h, "b2", { current_version: "1.2.0" });
    const r = await api(h, "POST", "/api/v1/devices/bulk/update", { ...asAdmin(h), body: { device_ids: ["b1", "b2", "b-unknown"], firmware_id: fw.firmware_id, update_config: { priority: "normal", max_retries: 3, timeout_minutes: 60 } } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ requested: 3, scheduled: 1, rejected: 2 });
    const by = Object.fromEntries(r.body.results.map((x: any) => [x.device_id, x]));
    expect(by.b2.error.code).toBe("INCOMPATIBLE_FIRMWARE");
    expect(by["b-unknown"].error).toMatchObject({ code: "DEVICE_NOT_FOUND", message: expect.stringMatching(/b-unknown/) });
    expect((await api(h, "GET", "/api/v1/devices/b-unknown", asAdmin(h))).status).toBe(404); // nothing created
    const provision = await api(h, "POST", "/api/v1/devices/bulk/update", { ...asAdmin(h), body: { device_ids: ["b-unknown"], firmware_id: fw.firmware_id, update_config: { create_missing: true } } });
    expect(provision.body).toMatchObject({ scheduled: 1, rejected: 0 });
    const u1 = (await api(h, "GET", `/api/v1/updates/${by.b1.update_id}`, asAdmin(h))).body;
    expect(u1).toMatchObject({ max_retries: 3, timeout_minutes: 60 });
    expect((await api(h, "GET", "/api/v1/devices/b-unknown", asAdmin(h))).body.status).toBe("waiting"); // create_missing made a waiting record
    const missing = await api(h, "POST", "/api/v1/devices/bulk/update", { ...asAdmin(h), body: { device_ids: ["b1"], firmware_id: "fw_nope" } });
    expect(missing.status).toBe(404);
    // force reinstalls the same version and replaces the update in flight
    const forced = await api(h, "POST", "/api/v1/devices/b2/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id, force: true } });
    expect(forced.status).toBe(201);
  });

  it("reports fleet stats", async () => {
    const s = (await api(h, "GET", "/api/v1/stats", asAdmin(h))).body;
    const rows = h.server.ctx.db.prepare("SELECT status FROM updates").all() as { status: string }[];
    for (const st of ["completed", "rolled_back", "failed", "cancelled", "scheduled"]) expect(s.updates_by_status[st], st).toBe(rows.filter((r) => r.status === st).length);
    expect(s.updates_by_status.rolled_back).toBe(1);
    expect(s.total_updates).toBe(rows.length);
    const done = rows.filter((r) => ["completed", "failed", "rolled_back"].includes(r.status));
    expect(s.success_rate).toBeCloseTo((100 * done.filter((r) => r.status === "completed").length) / done.length, 1);
    expect(s.devices_by_version["1.1.0"]).toBeGreaterThanOrEqual(1);
    const durs = h.server.ctx.db.prepare("SELECT completed_at - COALESCE(started_at, created_at) AS ms FROM updates WHERE status = 'completed'").all() as { ms: number }[];
    expect(s.mean_duration_seconds).toBeCloseTo(durs.reduce((a, b) => a + b.ms, 0) / durs.length / 1000, 1);
  });
});
