// A NUL character (U+0000) in a request is refused with a 400 NUL_CHARACTER and nothing of it is stored:
// PostgreSQL refuses it in TEXT, so on that backend it would otherwise be a 500, halfway through a transaction.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deviceHealthPath, updateStatusPath } from "../../device/protocol";
import { nulStringPath } from "../../server-stub/nul-strings";
import { api, asAdmin, connectMqtt, eventually, firmwareForm, randomBytes, registerDevice, startHarness, uploadFirmware, type Harness } from "./harness";

it("nulStringPath finds a NUL in nested values and in keys, and nothing else", () => {
  expect(nulStringPath({ a: [1, "ok", { b: "x\u0000" }] }, "body")).toBe("body/a/2/b");
  expect(nulStringPath({ "k\u0000": 1 }, "body")).toBe("body");
  expect(nulStringPath({ a: "\\u0000 as six characters", b: [null, true, 1.5], c: "\u0001\u001b" }, "body")).toBeNull();
});

describe("NUL characters in requests", () => {
  let h: Harness;
  let fwId: string;
  beforeAll(async () => {
    h = await startHarness();
    fwId = (await uploadFirmware(h, { version: "1.2.0" }, randomBytes(3000, 4))).firmware_id;
  });
  afterAll(() => h.close());

  async function assigned(id: string) {
    const key = await registerDevice(h, id, { current_version: "1.1.0" });
    const u = (await api(h, "POST", `/api/v1/devices/${id}/update`, { ...asAdmin(h), body: { firmware_id: fwId } })).body;
    return { key, updateId: u.update_id as string };
  }
  const count = (sql: string, ...args: unknown[]) => (h.server.ctx.db.prepare(sql).get(...args) as { n: number }).n;

  it("a status report or a health report holding one is a 400, and stores nothing", async () => {
    const { key, updateId } = await assigned("nul-http");
    const status = await api(h, "POST", updateStatusPath(updateId), { apiKey: key, body: { status: "failed", error_code: "X", error_message: "disk\u0000full" } });
    expect([status.status, status.body.error.code]).toEqual([400, "NUL_CHARACTER"]);
    expect(status.body.error.message).toContain("body/error_message");
    const health = await api(h, "POST", deviceHealthPath("nul-http"), {
      apiKey: key, body: { version: "1.1.0", reset_reason: "power_on", uptime_s: 1, crash_reboots: 0, timestamp: "2026\u0000" },
    });
    expect([health.status, health.body.error.code]).toEqual([400, "NUL_CHARACTER"]);
    expect(count("SELECT COUNT(*) AS n FROM status_reports WHERE update_id = ?", updateId)).toBe(0);
    expect(count("SELECT COUNT(*) AS n FROM health_reports WHERE device_id = ?", "nul-http")).toBe(0);
  });

  it("in a path parameter, a query string or an operator's body, too", async () => {
    const path = await api(h, "GET", "/api/v1/firmware/fw%00x", asAdmin(h));
    expect([path.status, path.body.error.code]).toEqual([400, "NUL_CHARACTER"]);
    const query = await api(h, "GET", "/api/v1/devices?device_model=M%00", asAdmin(h));
    expect([query.status, query.body.error.code]).toEqual([400, "NUL_CHARACTER"]);
    const group = await api(h, "POST", "/api/v1/groups", { ...asAdmin(h), body: { name: "g-nul", description: "a\u0000b" } });
    expect([group.status, group.body.error.code]).toEqual([400, "NUL_CHARACTER"]);
    expect(count("SELECT COUNT(*) AS n FROM device_groups WHERE name = ?", "g-nul")).toBe(0);
  });

  it("in firmware metadata (a multipart field, which the request hook does not read)", async () => {
    const r = await h.fetch(h.server.url + "/api/v1/firmware", {
      method: "POST", headers: { authorization: `Bearer ${h.admin}` },
      body: firmwareForm({ name: "n", version: "1.3.0", device_model: "ESP32-DEVKIT", description: "a\u0000b" }, randomBytes(1000, 8)),
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("NUL_CHARACTER");
    expect(count("SELECT COUNT(*) AS n FROM firmware WHERE version = ?", "1.3.0")).toBe(0);
  });

  it("a status report over MQTT holding one is rejected (logged), not stored", async () => {
    const { key, updateId } = await assigned("nul-mqtt");
    const client = await connectMqtt(h, "nul-mqtt", key);
    try {
      await client.publishAsync("devices/nul-mqtt/ota/status", JSON.stringify({ update_id: updateId, status: "downloading", progress: 10, error_message: "\u0000" }), { qos: 1 });
      await eventually(() => h.logs.some((l) => l.includes("mqtt_status_rejected") && l.includes("nul-mqtt") && l.includes("NUL_CHARACTER")));
      expect(count("SELECT COUNT(*) AS n FROM status_reports WHERE update_id = ?", updateId)).toBe(0);
    } finally {
      await client.endAsync();
    }
  });
});
