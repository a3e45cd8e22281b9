import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getFirmware } from "../../server-stub/model/firmware";
import { assignUpdate } from "../../server-stub/services/updates";
import { api, asAdmin, connectMqtt, eventually, nextMessage, randomBytes, registerDevice, startHarness, uploadFirmware, type Harness } from "./harness";

describe("MQTT", () => {
  let h: Harness;
  let fw: any;
  beforeAll(async () => {
    h = await startHarness();
    fw = await uploadFirmware(h, { version: "1.2.0" }, randomBytes(2000, 9));
  });
  afterAll(() => h.close());

  it("rejects anonymous clients, bad keys and a device key used under another username", async () => {
    const key = await registerDevice(h, "m-auth");
    await expect(connectMqtt(h, "m-auth", "wrong")).rejects.toThrow();
    await expect(connectMqtt(h, "someone-else", key)).rejects.toThrow();
    const ok = await connectMqtt(h, "m-auth", key);
    await ok.endAsync();
  });

  it("notifies a device on devices/{id}/ota when an update is assigned or cancelled", async () => {
    const key = await registerDevice(h, "m1", { current_version: "1.0.0" });
    const client = await connectMqtt(h, "m1", key);
    try {
      const granted = await client.subscribeAsync("devices/m1/ota", { qos: 1 });
      expect(granted[0]!.qos).toBe(1);
      const msg = nextMessage(client, "devices/m1/ota");
      const u = (await api(h, "POST", "/api/v1/devices/m1/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id, priority: "critical" } })).body;
      expect(await msg).toEqual({ action: "update_available", update_id: u.update_id, version: "1.2.0", mandatory: true });
      const cancel = nextMessage(client, "devices/m1/ota");
      await api(h, "POST", `/api/v1/updates/${u.update_id}/cancel`, { ...asAdmin(h), body: { reason: "test" } });
      expect(await cancel).toMatchObject({ action: "cancel", update_id: u.update_id });
    } finally {
      await client.endAsync();
    }
  });

  it("accepts status reports on devices/{id}/ota/status with the HTTP body plus update_id", async () => {
    const key = await registerDevice(h, "m2", { current_version: "1.0.0" });
    const u = (await api(h, "POST", "/api/v1/devices/m2/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } })).body;
    const client = await connectMqtt(h, "m2", key);
    try {
      await client.publishAsync("devices/m2/ota/status", JSON.stringify({ update_id: u.update_id, status: "downloading", progress: 40, sequence: 1 }), { qos: 1 });
      await eventually(async () => (await api(h, "GET", `/api/v1/updates/${u.update_id}`, asAdmin(h))).body.progress_percentage === 40);
      // invalid body and an impossible transition are rejected (logged), not applied
      await client.publishAsync("devices/m2/ota/status", JSON.stringify({ update_id: u.update_id, status: "bogus" }), { qos: 1 });
      await client.publishAsync("devices/m2/ota/status", JSON.stringify({ update_id: u.update_id, status: "rolled_back", sequence: 2 }), { qos: 1 });
      await client.publishAsync("devices/m2/ota/status", JSON.stringify({ update_id: u.update_id, status: "completed", sequence: 3 }), { qos: 1 });
      const done = await eventually(async () => {
        const b = (await api(h, "GET", `/api/v1/updates/${u.update_id}`, asAdmin(h))).body;
        return b.status === "completed" ? b : null;
      });
      expect(done.progress_percentage).toBe(100);
      const reports = h.server.ctx.db.prepare("SELECT status, via FROM status_reports WHERE update_id = ? ORDER BY id").all(u.update_id);
      expect(reports).toEqual([{ status: "downloading", via: "mqtt" }, { status: "completed", via: "mqtt" }]);
      expect(h.logs.join("")).toMatch(/mqtt_status_rejected device_id=m2 update_id=\S+ reason=INVALID_TRANSITION/);
    } finally {
      await client.endAsync();
    }
  });

  it("ACL: a device cannot subscribe to or publish under another device's id, nor to its own command topic", async () => {
    const keyA = await registerDevice(h, "acl-a", { current_version: "1.0.0" });
    const keyB = await registerDevice(h, "acl-b", { current_version: "1.0.0" });
    const a = await connectMqtt(h, "acl-a", keyA);
    const b = await connectMqtt(h, "acl-b", keyB);
    try {
      // mqtt.js turns a 0x80 SUBACK into an error carrying the packet.
      const granted = async (topic: string) => {
        try {
          return (await a.subscribeAsync(topic, { qos: 1 }))[0]!.qos;
        } catch (e) {
          return ((e as { packet?: { granted?: number[] } }).packet?.granted ?? [-1])[0];
        }
      };
      expect([await granted("devices/acl-b/ota"), await granted("devices/+/ota"), await granted("#"), await granted("devices/acl-a/#")]).toEqual([128, 128, 128, 1]);
      // B's update must not reach A even though A asked for everything.
      const uB = (await api(h, "POST", "/api/v1/devices/acl-b/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } })).body;
      const leaked: string[] = [];
      a.on("message", (t) => leaked.push(t));
      // A forging B's status: the broker refuses and drops A's connection; the update is untouched.
      const closed = new Promise<void>((resolve) => a.once("close", () => resolve()));
      a.publish("devices/acl-b/ota/status", JSON.stringify({ update_id: uB.update_id, status: "failed" }), { qos: 1 });
      await closed;
      expect((await api(h, "GET", `/api/v1/updates/${uB.update_id}`, asAdmin(h))).body.status).toBe("scheduled");
      expect(leaked.filter((t) => t.includes("acl-b"))).toEqual([]);
      // B may not publish a fake command to itself either.
      const bClosed = new Promise<void>((resolve) => b.once("close", () => resolve()));
      b.publish("devices/acl-b/ota", JSON.stringify({ action: "update_available" }), { qos: 1 });
      await bClosed;
      expect(h.logs.join("")).toContain("mqtt_publish_denied device_id=acl-a topic=devices/acl-b/ota/status");
    } finally {
      a.end(true);
      b.end(true);
    }
  });

  it("never announces an update whose transaction rolled back", async () => {
    const key = await registerDevice(h, "m-tx", { current_version: "1.0.0" });
    const client = await connectMqtt(h, "m-tx", key);
    try {
      await client.subscribeAsync("devices/m-tx/ota", { qos: 1 });
      const got: any[] = [];
      client.on("message", (_t, p) => got.push(JSON.parse(p.toString())));
      const { ctx } = h.server;
      const firmware = getFirmware(ctx.db, fw.firmware_id)!;
      expect(() => ctx.db.transaction(() => {
        assignUpdate(ctx, { deviceId: "m-tx", firmware, priority: "normal" });
        throw new Error("later step failed");
      })()).toThrow("later step failed");
      const committed = (await api(h, "POST", "/api/v1/devices/m-tx/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } })).body;
      await eventually(() => got.length > 0);
      await new Promise((r) => setTimeout(r, 100));
      expect(got.map((m) => m.update_id)).toEqual([committed.update_id]);
    } finally {
      await client.endAsync();
    }
  });

  it("lets an operator credential monitor all devices", async () => {
    const monitor = await connectMqtt(h, "ops", h.admin);
    try {
      const g = await monitor.subscribeAsync("devices/+/ota", { qos: 1 });
      expect(g[0]!.qos).toBe(1);
      await registerDevice(h, "m3", { current_version: "1.0.0" });
      const msg = nextMessage(monitor, "devices/m3/ota");
      await api(h, "POST", "/api/v1/devices/m3/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } });
      expect((await msg).action).toBe("update_available");
    } finally {
      await monitor.endAsync();
    }
  });
});
