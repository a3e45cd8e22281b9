import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, asAdmin, devToken, registerDevice, startHarness, type Harness } from "./harness";

describe("auth", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it("/health answers without credentials; everything else needs them", async () => {
    const health = await api(h, "GET", "/health");
    expect(health.status).toBe(200);
    expect(health.body.status).toBe("healthy");
    const none = await api(h, "GET", "/api/v1/firmware");
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe("UNAUTHORIZED");
    expect((await api(h, "GET", "/api/v1/firmware", { token: "not.a.jwt" })).status).toBe(401);
    expect((await api(h, "GET", "/api/v1/firmware", { apiKey: "ota_adm_bogus" })).status).toBe(401);
    expect((await api(h, "GET", "/docs/openapi.json")).status).toBe(401);
  });

  it("issues dev tokens (when turned on) on the main port and on the separate auth port (the HOWTO's 8202), operator unless asked", async () => {
    const viaAuthPort = await devToken(h, { user_id: "ota_admin", email: "admin@iotcorp.com", expires_in: 7200 }, h.server.authUrl!);
    expect(viaAuthPort.token_type).toBe("Bearer");
    expect(viaAuthPort.role).toBe("operator");
    expect((await api(h, "GET", "/api/v1/firmware", { token: viaAuthPort.access_token })).status).toBe(200);
    const who = await api(h, "GET", "/api/v1/auth/whoami", { token: viaAuthPort.access_token });
    expect(who.body).toMatchObject({ role: "operator", subject: "ota_admin", via: "jwt" });
    expect((await api(h, "POST", "/api/v1/auth/api-keys", { token: viaAuthPort.access_token, body: { role: "admin" } })).status).toBe(403);
    const admin = await devToken(h, { user_id: "root", role: "admin" }, h.server.authUrl!);
    expect(admin.role).toBe("admin");
    const bad = await fetch(h.server.authUrl + "/api/v1/auth/dev-token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "x" }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.code).toBe("VALIDATION_ERROR");
  });

  it("expires tokens on the server clock", async () => {
    const t = (await devToken(h, { user_id: "short", expires_in: 60 })).access_token;
    expect((await api(h, "GET", "/api/v1/stats", { token: t })).status).toBe(200);
    h.clock.advance(61_000);
    expect((await api(h, "GET", "/api/v1/stats", { token: t })).status).toBe(401);
  });

  it("enforces roles: viewer reads, cannot write; operator cannot mint API keys", async () => {
    const viewer = (await devToken(h, { user_id: "v", role: "viewer" })).access_token;
    const operator = (await devToken(h, { user_id: "o", role: "operator" })).access_token;
    expect((await api(h, "GET", "/api/v1/campaigns", { token: viewer })).status).toBe(200);
    const w = await api(h, "POST", "/api/v1/devices", { token: viewer, body: { device_id: "x1" } });
    expect(w.status).toBe(403);
    expect(w.body.error.code).toBe("FORBIDDEN");
    expect((await api(h, "POST", "/api/v1/auth/api-keys", { token: operator, body: { role: "viewer" } })).status).toBe(403);
    const k = await api(h, "POST", "/api/v1/auth/api-keys", { ...asAdmin(h), body: { role: "operator", name: "ci" } });
    expect(k.status).toBe(201);
    expect((await api(h, "POST", "/api/v1/devices", { apiKey: k.body.api_key, body: { device_id: "x2" } })).status).toBe(201);
    expect((await api(h, "POST", "/api/v1/auth/api-keys", { apiKey: k.body.api_key, body: { role: "admin" } })).status).toBe(403);
  });

  it("scopes device credentials to their own device and the device-facing routes", async () => {
    const keyA = await registerDevice(h, "scope-a");
    await registerDevice(h, "scope-b");
    expect((await api(h, "GET", "/api/v1/devices/scope-a/available-updates", { apiKey: keyA })).status).toBe(200);
    expect((await api(h, "GET", "/api/v1/devices/scope-b/available-updates", { apiKey: keyA })).status).toBe(403);
    expect((await api(h, "GET", "/api/v1/devices/scope-a", { apiKey: keyA })).status).toBe(403);
    expect((await api(h, "GET", "/api/v1/firmware", { apiKey: keyA })).status).toBe(403);
    expect((await api(h, "GET", "/api/v1/keys", { apiKey: keyA })).status).toBe(403);
    // A device JWT is scoped the same way.
    const jwt = (await devToken(h, { user_id: "dev", role: "device", device_id: "scope-b" })).access_token;
    expect((await api(h, "GET", "/api/v1/devices/scope-b/available-updates", { token: jwt })).status).toBe(200);
    expect((await api(h, "GET", "/api/v1/devices/scope-a/available-updates", { token: jwt })).status).toBe(403);
  });

  it("re-registering a device re-keys it: the old key stops working", async () => {
    const first = await registerDevice(h, "rekey");
    const second = await registerDevice(h, "rekey");
    expect(second).not.toBe(first);
    expect((await api(h, "GET", "/api/v1/devices/rekey/available-updates", { apiKey: first })).status).toBe(401);
    expect((await api(h, "GET", "/api/v1/devices/rekey/available-updates", { apiKey: second })).status).toBe(200);
    const stored = h.server.ctx.db.prepare("SELECT key_hash FROM api_keys WHERE device_id = 'rekey'").all() as { key_hash: string }[];
    expect(stored.every((r) => r.key_hash !== second && /^[0-9a-f]{64}$/.test(r.key_hash))).toBe(true); // only hashes stored
  });

  it("answers unknown routes, bad JSON and oversized bodies with 4xx error objects", async () => {
    const nf = await api(h, "GET", "/api/v1/nope", asAdmin(h));
    expect(nf.status).toBe(404);
    expect(nf.body.error.code).toBe("NOT_FOUND");
    const badJson = await fetch(h.server.url + "/api/v1/devices", { method: "POST", headers: { authorization: `Bearer ${h.admin}`, "content-type": "application/json" }, body: "{nope" });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as any).error.message).toBeTruthy();
    const big = await fetch(h.server.url + "/api/v1/devices", { method: "POST", headers: { authorization: `Bearer ${h.admin}`, "content-type": "application/json" }, body: JSON.stringify({ device_id: "x".repeat(2_000_000) }) });
    expect(big.status).toBe(413);
    const badId = await api(h, "POST", "/api/v1/devices", { ...asAdmin(h), body: { device_id: "a/b" } });
    expect(badId.status).toBe(400);
    expect(badId.body.error.code).toBe("INVALID_DEVICE_ID");
  });

  it("serves an OpenAPI document that lists the HOWTO paths", async () => {
    const doc = await api(h, "GET", "/docs/openapi.json", asAdmin(h));
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    for (const p of ["/api/v1/firmware", "/api/v1/campaigns/{campaign_id}/rollback", "/api/v1/devices/bulk/update", "/api/v1/updates/{update_id}/retry", "/api/v1/stats/campaigns/{campaign_id}"]) {
      expect(Object.keys(doc.body.paths)).toContain(p);
    }
  });
});

describe("auth without --dev-tokens (the default)", () => {
  it("serves no dev-token endpoint and no auth listener", async () => {
    const h = await startHarness({ devToken: undefined });
    try {
      expect(h.server.authUrl).toBeNull();
      const r = await fetch(h.server.url + "/api/v1/auth/dev-token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user_id: "x" }) });
      expect(r.status).toBe(404);
    } finally {
      await h.close();
    }
  });
});
