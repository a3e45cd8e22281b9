// Operations: readiness (database and broker), Prometheus metrics and who may read them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, asAdmin, devToken, randomBytes, registerDevice, startHarness, uploadFirmware, type Harness } from "./harness";

/** The value of one sample line of a Prometheus text exposition, or null. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return null;
}

describe("GET /ready", () => {
  it("answers 200 with its checks, and 503 naming the broker when the broker is gone", async () => {
    const broker = await startHarness();
    const h = await startHarness({ mqttUrl: `mqtt://ops:${broker.admin}@127.0.0.1:${broker.server.mqttPort}`, mqttPort: null, mqttProvisioning: "none" });
    try {
      const ok = await api(h, "GET", "/ready");
      expect(ok).toMatchObject({ status: 200, body: { status: "ready", checks: { database: "ok", broker: "ok", server: "ok" } } });
      await broker.close();
      const down = await api(h, "GET", "/ready");
      expect(down).toMatchObject({ status: 503, body: { status: "not_ready", checks: { database: "ok", broker: "disconnected" }, error: { code: "NOT_READY", message: "not ready: broker" } } });
      expect((await api(h, "GET", "/health")).status).toBe(200); // alive all the same
    } finally {
      await h.close();
    }
  });

  it("answers 503 naming the database when it does not answer", async () => {
    const h = await startHarness({ mqttPort: null });
    try {
      expect((await api(h, "GET", "/ready")).body.checks).toEqual({ database: "ok", broker: "disabled", server: "ok" });
      h.server.ctx.db.close();
      expect(await api(h, "GET", "/ready")).toMatchObject({ status: 503, body: { checks: { database: "failed" }, error: { message: "not ready: database" } } });
    } finally {
      await h.close();
    }
  });
});

describe("GET /metrics", () => {
  let h: Harness;
  beforeAll(async () => {
    // Listening on all interfaces: no open metrics; loopback callers need credentials like anyone else.
    h = await startHarness({ host: "0.0.0.0", metricsToken: "scrape-secret-1234" });
  });
  afterAll(() => h.close());
  const scrape = async (auth: { token?: string; apiKey?: string } = { token: "scrape-secret-1234" }) => api<string>(h, "GET", "/metrics", auth);

  it("needs a reader's credential or the metrics token", async () => {
    expect((await scrape({})).status).toBe(401);
    expect((await scrape({ token: "scrape-secret-1235" })).status).toBe(401);
    const deviceKey = await registerDevice(h, "m-dev");
    expect(await scrape({ apiKey: deviceKey })).toMatchObject({ status: 403, body: { error: { code: "FORBIDDEN" } } });
    const viewer = (await devToken(h, { user_id: "v", role: "viewer" })).access_token;
    expect((await scrape({ token: viewer })).status).toBe(200);
    const ok = await scrape();
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toMatch(/^text\/plain; version=0.0.4/);
  });

  it("counts requests by route template and status, with a latency histogram", async () => {
    for (let i = 0; i < 3; i++) await api(h, "GET", "/api/v1/devices/nope-" + i, asAdmin(h)); // 404s on one template
    const text = (await scrape()).body;
    expect(sample(text, "ota_http_requests_total", { method: "GET", route: "/api/v1/devices/:device_id", status: "404" })).toBe(3);
    expect(sample(text, "ota_http_request_duration_seconds_count", { method: "GET", route: "/api/v1/devices/:device_id" })).toBe(3);
    expect(sample(text, "ota_http_request_duration_seconds_bucket", { method: "GET", route: "/api/v1/devices/:device_id", le: "+Inf" })).toBe(3);
    expect(text).not.toContain("nope-"); // ids never become label values
  });

  it("reports bytes served, devices and campaigns by state, and engine leadership from the database", async () => {
    const before = sample((await scrape()).body, "ota_bytes_served_total", { kind: "full" }) ?? 0;
    const fw = await uploadFirmware(h, { version: "2.0.0" }, randomBytes(5000, 9));
    await registerDevice(h, "m-1");
    await registerDevice(h, "m-2");
    await api(h, "POST", "/api/v1/devices/m-1/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } });
    const dl = await api(h, "GET", `/api/v1/firmware/${fw.firmware_id}/download`, asAdmin(h));
    expect(dl.status).toBe(200);
    const camp = await api(h, "POST", "/api/v1/campaigns", { ...asAdmin(h), body: { name: "c", firmware_id: fw.firmware_id, deployment_strategy: "immediate", target_devices: ["m-2"] } });
    expect(camp.status).toBe(201);
    const text = (await scrape()).body;
    expect(sample(text, "ota_bytes_served_total", { kind: "full" })).toBe(before + 5000);
    expect(sample(text, "ota_devices", { state: "scheduled" })).toBe(1); // m-1's update
    expect(sample(text, "ota_devices", { state: "none" })).toBeGreaterThanOrEqual(2); // m-2 (campaign not started), m-dev
    expect(sample(text, "ota_campaigns", { status: camp.body.status })).toBe(1);
    expect(sample(text, "ota_engine_leader")).toBe(1);
    expect(sample(text, "ota_active_downloads")).toBe(0);
    expect(sample(text, "ota_process_resident_memory_bytes")).toBeGreaterThan(0);
  });
});
