import { createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { api, asAdmin, devToken, firmwareForm, randomBytes, startHarness, type Harness } from "./harness";
import { campaign, createCampaign, inFlight, settle, setupFleet, start, type Fleet } from "./fleet";

describe("restart persistence", () => {
  let h: Harness;
  let f: Fleet;
  beforeEach(async () => {
    h = await startHarness();
    f = await setupFleet(h, 6);
  });
  afterEach(() => h.close());

  it("keeps firmware, devices, keys, credentials and updates across a restart", async () => {
    const keysBefore = (await api(h, "GET", "/api/v1/keys", asAdmin(h))).body.keys;
    const u = (await api(h, "POST", "/api/v1/devices/d01/update", { ...asAdmin(h), body: { firmware_id: f.fwNew.firmware_id } })).body;
    await h.restart();
    expect((await api(h, "GET", "/api/v1/keys", asAdmin(h))).body.keys).toEqual(keysBefore); // same admin JWT still valid: secret persisted
    expect((await api(h, "GET", `/api/v1/firmware/${f.fwNew.firmware_id}`, asAdmin(h))).body.checksum_sha256).toBe(f.fwNew.checksum_sha256);
    const dl = await fetch(`${h.server.url}/api/v1/firmware/${f.fwNew.firmware_id}/download`, { headers: { "x-api-key": f.keys.get("d01")! } });
    expect(createHash("sha256").update(new Uint8Array(await dl.arrayBuffer())).digest("hex")).toBe(f.fwNew.checksum_sha256);
    const env = (await api(h, "GET", "/api/v1/devices/d01/available-updates", { apiKey: f.keys.get("d01") })).body;
    expect(env.manifest.update_id).toBe(u.update_id);
    expect(env.key_id).toBe(keysBefore[0].key_id);
  });

  it("continues a running campaign after a restart, including a soak that ends while it was down", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "canary", target_devices: f.ids, canary_percentage: 20, canary_duration_minutes: 60, batch_size: 2 });
    await start(h, id);
    expect(await inFlight(h, id)).toEqual(["d01", "d02"]);
    await settle(h, f, id);
    await h.server.close();
    h.clock.advanceMinutes(61); // time passes while the server is down
    await h.restart();
    expect(await campaign(h, id)).toMatchObject({ status: "in_progress", completed_devices: 2, in_progress_devices: 2 });
    await settle(h, f, id);
    await settle(h, f, id);
    expect(await campaign(h, id)).toMatchObject({ status: "completed", completed_devices: 6 });
  });
});

describe("signing keys", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(() => h.close());

  it("rotates (old key stays listed), signs with the newest key, retires old keys but never the last one", async () => {
    const [k1] = (await api(h, "GET", "/api/v1/keys", asAdmin(h))).body.keys;
    expect(Buffer.from(k1.public_key, "base64")).toHaveLength(32);
    const rot = await api(h, "POST", "/api/v1/keys/rotate", asAdmin(h));
    expect(rot.status).toBe(201);
    const keys = (await api(h, "GET", "/api/v1/keys", asAdmin(h))).body.keys;
    expect(keys.map((k: any) => [k.key_id, k.retired, k.algorithm])).toEqual([[k1.key_id, false, "ed25519"], [rot.body.key_id, false, "ed25519"], [expect.any(String), false, "ecdsa-p256-sha256"]]);
    const p1 = keys[2].key_id as string;
    const rotP = await api(h, "POST", "/api/v1/keys/rotate?algorithm=ecdsa-p256-sha256", asAdmin(h));
    expect([rotP.status, rotP.body.algorithm, Buffer.from(rotP.body.public_key, "base64").length]).toEqual([201, "ecdsa-p256-sha256", 65]);
    expect((await api(h, "POST", "/api/v1/keys/rotate?algorithm=rsa", asAdmin(h))).status).toBe(400);
    const fw = (await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: firmwareForm({ version: "1.0.1", device_model: "IOT-2024" }, randomBytes(100)) })).body;
    const devKey = (await api(h, "POST", "/api/v1/devices", { ...asAdmin(h), body: { device_id: "kd" } })).body.api_key;
    await api(h, "POST", "/api/v1/devices/kd/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } });
    const env = (await api(h, "GET", "/api/v1/devices/kd/available-updates", { apiKey: devKey })).body;
    expect(env.key_id).toBe(rot.body.key_id);
    // One signature per algorithm, each by its newest key; the legacy fields repeat the ed25519 one.
    expect(env.signatures.map((x: any) => [x.alg, x.key_id])).toEqual([["ed25519", rot.body.key_id], ["ecdsa-p256-sha256", rotP.body.key_id]]);
    expect(env.signatures[0].sig).toBe(env.signature);
    expect((await api(h, "POST", `/api/v1/keys/${p1}/retire`, asAdmin(h))).body.retired).toBe(true);
    expect((await api(h, "POST", `/api/v1/keys/${rotP.body.key_id}/retire`, asAdmin(h))).status).toBe(409);
    expect((await api(h, "POST", `/api/v1/keys/${k1.key_id}/retire`, asAdmin(h))).body.retired).toBe(true);
    const last = await api(h, "POST", `/api/v1/keys/${rot.body.key_id}/retire`, asAdmin(h));
    expect([last.status, last.body.error.code]).toEqual([409, "LAST_ACTIVE_KEY"]);
    expect((await api(h, "POST", "/api/v1/keys/k_nope/retire", asAdmin(h))).status).toBe(404);
    const operator = (await devToken(h, { user_id: "o", role: "operator" })).access_token;
    expect((await api(h, "POST", "/api/v1/keys/rotate", { token: operator })).status).toBe(403);
  });
});
