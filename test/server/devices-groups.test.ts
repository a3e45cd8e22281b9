import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, asAdmin, devToken, randomBytes, registerDevice, startHarness, uploadFirmware, type Harness } from "./harness";

describe("devices and groups", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it("registers devices into groups and lists them with filters and paging", async () => {
    const r = await api(h, "POST", "/api/v1/devices", { ...asAdmin(h), body: { device_id: "g1", device_model: "IOT-2024", hardware_version: "1.0", groups: ["lab", "eu"] } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ device: { device_id: "g1", status: "registered", groups: ["eu", "lab"] }, mqtt_username: "g1", api_key: expect.stringMatching(/^ota_dev_/) });
    await registerDevice(h, "g2", { device_model: "OTHER", groups: ["lab"] });
    await registerDevice(h, "g3");
    const all = await api(h, "GET", "/api/v1/devices", asAdmin(h));
    expect([all.body.total, all.body.devices.map((d: any) => d.device_id)]).toEqual([3, ["g1", "g2", "g3"]]);
    expect((await api(h, "GET", "/api/v1/devices?group=lab", asAdmin(h))).body.devices.map((d: any) => d.device_id)).toEqual(["g1", "g2"]);
    expect((await api(h, "GET", "/api/v1/devices?device_model=OTHER", asAdmin(h))).body.devices.map((d: any) => d.device_id)).toEqual(["g2"]);
    const page = await api(h, "GET", "/api/v1/devices?limit=1&offset=2", asAdmin(h));
    expect([page.body.total, page.body.devices.map((d: any) => d.device_id)]).toEqual([3, ["g3"]]);
    expect((await api(h, "GET", "/api/v1/devices/nobody", asAdmin(h))).status).toBe(404);
    const viewer = (await devToken(h, { user_id: "v", role: "viewer", expires_in: 86400 })).access_token;
    expect((await api(h, "GET", "/api/v1/devices/g1", { token: viewer })).body.device_id).toBe("g1");
  });

  it("shows the current update on the device", async () => {
    const fw = await uploadFirmware(h, { version: "2.0.0" }, randomBytes(100));
    const u = (await api(h, "POST", "/api/v1/devices/g3/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } })).body;
    expect((await api(h, "GET", "/api/v1/devices/g3", asAdmin(h))).body.current_update).toEqual({ update_id: u.update_id, status: "scheduled", to_version: "2.0.0", progress_percentage: 0 });
    const missing = await api(h, "POST", "/api/v1/devices/g3/update", { ...asAdmin(h), body: { firmware_id: "fw_none" } });
    expect([missing.status, missing.body.error.code]).toEqual([404, "FIRMWARE_NOT_FOUND"]);
    expect((await api(h, "POST", "/api/v1/devices/g3/update", { ...asAdmin(h), body: {} })).status).toBe(400);
  });

  it("creates, reads, fills and empties groups", async () => {
    const c = await api(h, "POST", "/api/v1/groups", { ...asAdmin(h), body: { name: "production_fleet", description: "prod", device_ids: ["g1", "new-one"] } });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ name: "production_fleet", description: "prod", device_ids: ["g1", "new-one"] });
    expect((await api(h, "GET", "/api/v1/devices/new-one", asAdmin(h))).body.status).toBe("waiting");
    expect((await api(h, "POST", "/api/v1/groups", { ...asAdmin(h), body: { name: "production_fleet" } })).body.error.code).toBe("GROUP_EXISTS");
    expect((await api(h, "POST", "/api/v1/groups", { ...asAdmin(h), body: { name: "bad name" } })).body.error.code).toBe("INVALID_GROUP_NAME");
    const list = (await api(h, "GET", "/api/v1/groups", asAdmin(h))).body.groups.map((g: any) => g.name);
    expect(list).toEqual(["eu", "lab", "production_fleet"]);
    const del = await api(h, "DELETE", "/api/v1/groups/production_fleet/devices/g1", asAdmin(h));
    expect(del.body.device_ids).toEqual(["new-one"]);
    expect((await api(h, "DELETE", "/api/v1/groups/production_fleet/devices/g1", asAdmin(h))).status).toBe(404);
    expect((await api(h, "GET", "/api/v1/groups/production_fleet", asAdmin(h))).body.device_ids).toEqual(["new-one"]);
    expect((await api(h, "GET", "/api/v1/groups/nope", asAdmin(h))).status).toBe(404);
    expect((await api(h, "POST", "/api/v1/groups/nope/devices", { ...asAdmin(h), body: { device_ids: ["g1"] } })).status).toBe(404);
    expect((await api(h, "GET", "/api/v1/devices/g1", asAdmin(h))).body.groups).toEqual(["eu", "lab"]);
  });
});
