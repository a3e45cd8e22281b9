// Credentials that can be taken back: dev tokens only from loopback, API keys listed and revoked, a device
// revoked, and the MQTT sessions of a revoked key, a revoked device or an expired token closed within seconds.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttClient } from "mqtt";
import { api, asAdmin, connectMqtt, devToken, registerDevice, startHarness, type Harness } from "./harness";

/** Resolves with how long the client took to be disconnected by the server, or rejects after ms. */
function closedWithin(client: MqttClient, ms: number): Promise<number> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`session still open after ${ms} ms`)), ms);
    client.once("close", () => (clearTimeout(t), resolve(Date.now() - start)));
  });
}

describe("credentials", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it("mints dev tokens only for callers on this machine", async () => {
    const from = (remoteAddress: string) =>
      h.server.app.inject({ method: "POST", url: "/api/v1/auth/dev-token", payload: { user_id: "x" }, remoteAddress });
    const remote = await from("192.0.2.7");
    expect(remote.statusCode).toBe(403);
    expect(remote.json().error.code).toBe("DEV_TOKEN_LOOPBACK_ONLY");
    expect((await from("::ffff:10.1.2.3")).statusCode).toBe(403);
    expect((await from("127.0.0.1")).statusCode).toBe(200);
    expect((await from("::1")).statusCode).toBe(200);
    expect(h.logs.join("")).not.toMatch(/dev_token_issued user_id=x role=admin/);
  });

  it("lists API keys by id without the secret, and revokes one over the API", async () => {
    const created = await api(h, "POST", "/api/v1/auth/api-keys", { ...asAdmin(h), body: { role: "operator", name: "ci" } });
    expect(created.status).toBe(201);
    const key = created.body.api_key as string;
    expect((await api(h, "GET", "/api/v1/stats", { apiKey: key })).status).toBe(200);
    const list = await api(h, "GET", "/api/v1/auth/api-keys?role=operator", asAdmin(h));
    expect(list.status).toBe(200);
    const entry = list.body.api_keys.find((k: any) => k.name === "ci");
    expect(entry).toMatchObject({ role: "operator", revoked: false, key_id: expect.stringMatching(/^ak_[0-9a-f]{16}$/) });
    expect(JSON.stringify(list.body)).not.toContain(key);
    const operator = (await devToken(h, { user_id: "o", role: "operator" })).access_token;
    expect((await api(h, "DELETE", `/api/v1/auth/api-keys/${entry.key_id}`, { token: operator })).status).toBe(403);
    const revoked = await api(h, "DELETE", `/api/v1/auth/api-keys/${entry.key_id}`, asAdmin(h));
    expect(revoked.body).toMatchObject({ key_id: entry.key_id, revoked: true });
    expect((await api(h, "GET", "/api/v1/stats", { apiKey: key })).status).toBe(401);
    expect((await api(h, "DELETE", "/api/v1/auth/api-keys/ak_0000000000000000", asAdmin(h))).status).toBe(404);
    expect((await api(h, "GET", "/api/v1/auth/api-keys?active=true", asAdmin(h))).body.api_keys.some((k: any) => k.key_id === entry.key_id)).toBe(false);
  });

  it("revoking an API key closes its live MQTT session within seconds", async () => {
    const created = await api(h, "POST", "/api/v1/auth/api-keys", { ...asAdmin(h), body: { role: "operator", name: "watcher" } });
    const client = await connectMqtt(h, "watcher", created.body.api_key);
    const keyId = (await api(h, "GET", "/api/v1/auth/api-keys", asAdmin(h))).body.api_keys.find((k: any) => k.name === "watcher").key_id;
    const closed = closedWithin(client, 3000);
    await api(h, "DELETE", `/api/v1/auth/api-keys/${keyId}`, asAdmin(h));
    const ms = await closed;
    console.log(`[credentials] MQTT session of a revoked API key closed after ${ms} ms`);
    expect(ms).toBeLessThan(3000);
    await expect(connectMqtt(h, "watcher", created.body.api_key)).rejects.toThrow();
    client.end(true);
  });

  it("revoking a device refuses its key over HTTP and MQTT and closes its session", async () => {
    const key = await registerDevice(h, "rev-1");
    const client = await connectMqtt(h, "rev-1", key);
    const closed = closedWithin(client, 3000);
    const r = await api(h, "POST", "/api/v1/devices/rev-1/revoke", asAdmin(h));
    expect(r.body).toEqual({ device_id: "rev-1", revoked_keys: 1 });
    await closed;
    expect((await api(h, "GET", "/api/v1/devices/rev-1/available-updates", { apiKey: key })).status).toBe(401);
    await expect(connectMqtt(h, "rev-1", key)).rejects.toThrow();
    expect(h.logs.join("")).toMatch(/mqtt_session_closed device_id=rev-1 .*reason=credential_no_longer_valid/);
    const fresh = await registerDevice(h, "rev-1"); // an operator can give it a new key
    expect((await api(h, "GET", "/api/v1/devices/rev-1/available-updates", { apiKey: fresh })).status).toBe(200);
    expect((await api(h, "POST", "/api/v1/devices/nobody/revoke", asAdmin(h))).status).toBe(404);
    client.end(true);
  });

  it("a token that expires closes its MQTT session within seconds", async () => {
    const token = (await devToken(h, { user_id: "short-mqtt", role: "operator", expires_in: 60 })).access_token;
    const client = await connectMqtt(h, "short-mqtt", token);
    const closed = closedWithin(client, 3000);
    h.clock.advance(61_000);
    const ms = await closed;
    console.log(`[credentials] MQTT session of an expired token closed after ${ms} ms`);
    expect(ms).toBeLessThan(3000);
    client.end(true);
  });
});

describe("device allow-list mode", () => {
  it("lets only registered device ids authenticate, whatever the credential", async () => {
    const h = await startHarness({ deviceAllowList: true });
    try {
      const jwt = await h.server.app.inject({ method: "POST", url: "/api/v1/auth/dev-token", payload: { user_id: "d", role: "device", device_id: "stranger" }, remoteAddress: "127.0.0.1" });
      expect(jwt.statusCode).toBe(403);
      expect(jwt.json().error.code).toBe("DEVICE_NOT_ALLOWED");
      // A device JWT minted with the secret for an id nobody registered is refused too.
      const forged = h.server.ctx.tokens.issue({ user_id: "d", role: "device", device_id: "stranger" }, 600);
      expect((await api(h, "GET", "/api/v1/devices/stranger/available-updates", { token: forged })).status).toBe(401);
      await expect(connectMqtt(h, "stranger", forged)).rejects.toThrow();
      await registerDevice(h, "stranger");
      expect((await api(h, "GET", "/api/v1/devices/stranger/available-updates", { token: forged })).status).toBe(200);
    } finally {
      await h.close();
    }
  });
});
