// Reliability harness 4b: limits and abuse (issue 11, point 5). One case per class, each through the real server:
// refused with its 4xx code (never a 5xx) and nothing stored — no row written, no blob kept, no temporary file left.
import { connect } from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppImage } from "../../esp-image/app-image";
import { logDestination } from "../../server-stub/log";
import type { Harness } from "../server/harness";
import { api, asAdmin, connectMqtt, devToken, firmwareForm, randomBytes, registerDevice, startHarness } from "../server/harness";
import { storedState } from "./stored-state";
import { printCounts } from "./support";

const tally = { cases: 0, refused: 0, fiveHundreds: 0 };

/** Runs a request that must be refused with `status` and `code`, and checks that it stored nothing. */
async function refused(h: Harness, status: number, code: string | null, send: () => Promise<{ status: number; body: any }>) {
  const before = storedState(h);
  const r = await send();
  tally.cases++;
  if (r.status >= 500) tally.fiveHundreds++;
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  if (code) expect(r.body.error.code).toBe(code);
  expect(storedState(h)).toEqual(before);
  tally.refused++;
  return r;
}

const upload = (h: Harness, meta: Record<string, unknown>, bytes: Uint8Array) => api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: firmwareForm(meta, bytes) });

describe("limits and abuse: every class refused, nothing stored", () => {
  let h: Harness;
  const text: string[] = [];
  beforeAll(async () => {
    // The log through the real text formatter, as ota-server writes its file.
    const sink = new Writable({ write(chunk, _e, cb) { text.push(String(chunk)); cb(); } });
    h = await startHarness({
      distinctApprover: true,
      logger: pino({ level: "info" }, logDestination("text", [{ write: (t) => sink.write(t) }])),
      requestLimits: { requestTimeoutMs: 1500, idleTimeoutMs: 1000, headersTimeoutMs: 1000, mqttMaxPacketBytes: 4096 },
    });
  });
  afterAll(async () => {
    printCounts(`abuse classes: ${tally.cases} refused requests, refused with their code and nothing stored: ${tally.refused}, 5xx: ${tally.fiveHundreds}`);
    await h?.close();
  });

  it("JSON nested deeper than the limit", async () => {
    const deep = JSON.parse("[".repeat(40) + "]".repeat(40));
    await refused(h, 400, "JSON_TOO_DEEP", () => api(h, "POST", "/api/v1/groups", { ...asAdmin(h), body: { name: "deep", description: deep } }));
  });

  it("every numeric query parameter has an upper bound, and a value above it is refused", async () => {
    const doc = (await api(h, "GET", "/docs/openapi.json", asAdmin(h))).body;
    const unbounded: string[] = [];
    for (const [path, ops] of Object.entries<any>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(ops)) {
        for (const p of (op.parameters ?? []).filter((x: any) => x.in === "query")) {
          const s = p.schema ?? {};
          const numeric = s.type === "integer" || s.type === "number";
          if ((numeric && s.maximum === undefined) || (s.type === "string" && s.maxLength === undefined && !s.enum)) unbounded.push(`${method} ${path} ?${p.name}`);
          if (numeric && !path.includes("{")) await refused(h, 400, "VALIDATION_ERROR", () => api(h, method.toUpperCase(), `${path}?${p.name}=${s.maximum + 1}`, asAdmin(h)));
        }
      }
    }
    expect(unbounded).toEqual([]);
  });

  it("firmware metadata over the cap, as a form field, as a file part, and its free-form object", async () => {
    const big = { device_model: "IOT-2024", version: "3.0.0", description: "x".repeat(70 * 1024) };
    await refused(h, 400, "INVALID_METADATA", () => upload(h, big, randomBytes(1024)));
    const asFile = new FormData();
    asFile.append("metadata", new Blob([JSON.stringify(big)]), "meta.json");
    asFile.append("file", new Blob([randomBytes(1024)]), "fw.bin");
    await refused(h, 400, "METADATA_TOO_LARGE", () => api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: asFile }));
    await refused(h, 400, "METADATA_TOO_LARGE", () => upload(h, { device_model: "IOT-2024", version: "3.0.1", metadata: { notes: "y".repeat(20_000) } }, randomBytes(1024)));
  });

  it("a version the device cannot parse is refused at upload, from the metadata or from the image", async () => {
    await refused(h, 400, "INVALID_METADATA", () => upload(h, { device_model: "IOT-2024", version: "banana" }, randomBytes(1024)));
    await refused(h, 400, "INVALID_METADATA", () => upload(h, { device_model: "ESP32-DEVKIT" }, buildAppImage({ version: "release-A" })));
  });

  it("an upload for an ESP32 model must be a valid ESP app image, a raw blob only when the metadata says so", async () => {
    await refused(h, 400, "IMAGE_INVALID", () => upload(h, { device_model: "ESP32-DEVKIT", version: "3.1.0" }, randomBytes(4096)));
    await refused(h, 400, "IMAGE_INVALID", () => upload(h, { device_model: "IOT-2024", version: "3.1.0", image_format: "esp-app" }, randomBytes(4096)));
    const broken = buildAppImage({ version: "3.1.0" });
    broken[broken.length - 1]! ^= 0xff; // the appended SHA-256 no longer matches
    await refused(h, 400, "IMAGE_INVALID", () => upload(h, { device_model: "ESP32-DEVKIT" }, broken));
    const raw = await upload(h, { device_model: "ESP32-DEVKIT", version: "3.1.0", image_format: "raw" }, randomBytes(4096));
    expect(raw.status).toBe(201);
    expect(raw.body.image_format).toBe("raw");
  });

  it("a campaign's approver must differ from its creator (--distinct-approver)", async () => {
    await registerDevice(h, "appr-1");
    const fw = (await upload(h, { device_model: "IOT-2024", version: "4.0.0" }, randomBytes(2048, 4))).body;
    const camp = await api(h, "POST", "/api/v1/campaigns", { ...asAdmin(h), body: { name: "four eyes", firmware_id: fw.firmware_id, target_devices: ["appr-1"], requires_approval: true } });
    const id = camp.body.campaign_id;
    await refused(h, 403, "APPROVER_IS_CREATOR", () => api(h, "POST", `/api/v1/campaigns/${id}/approve`, { ...asAdmin(h), body: {} }));
    const other = (await devToken(h, { user_id: "reviewer", role: "operator" })).access_token;
    expect((await api(h, "POST", `/api/v1/campaigns/${id}/approve`, { token: other, body: {} })).status).toBe(200);
  });

  it("control characters in input are escaped in the log", async () => {
    const evil = "x\u001b[2J\u0007\u0085\u2028INFO forged"; // not \u0000: a request holding one is refused (NUL_CHARACTER)
    await h.server.app.inject({ method: "POST", url: "/api/v1/auth/dev-token", payload: { user_id: evil }, remoteAddress: "127.0.0.1" });
    const line = text.find((l) => l.includes("dev_token_issued") && l.includes("forged"))!;
    expect(line).toContain("user_id=x\\x1b[2J\\x07");
    expect(line).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/);
    expect(line.trimEnd().split("\n")).toHaveLength(1);
  });

  it("a body that stops arriving is cut off by the request timeouts", async () => {
    const before = storedState(h);
    const started = Date.now();
    const answer = await new Promise<string>((resolve) => {
      const s = connect(h.server.port, "127.0.0.1", () => {
        s.write(`POST /api/v1/groups HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${h.admin}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":"slow`);
      });
      let got = "";
      s.on("data", (c) => (got += String(c)));
      s.on("close", () => resolve(got));
      s.setTimeout(10_000, () => s.destroy());
    });
    const took = Date.now() - started;
    tally.cases++;
    printCounts(`slow body: closed after ${took} ms (${answer.split("\r\n")[0] || "no answer"})`);
    expect(took).toBeLessThan(5000);
    expect(answer === "" || /^HTTP\/1.1 408/.test(answer)).toBe(true);
    expect(storedState(h)).toEqual(before);
    tally.refused++;
  });

  it("MQTT: a packet above the maximum size closes the connection; retained publishes are refused", async () => {
    const key = await registerDevice(h, "mq-1");
    const big = await connectMqtt(h, "mq-1", key);
    const closedBig = new Promise<void>((resolve) => big.once("close", () => resolve()));
    const before = storedState(h);
    big.publish("devices/mq-1/ota/status", Buffer.alloc(8192, 0x7b));
    await closedBig;
    expect(text.join("")).toMatch(/mqtt_packet_too_large .*size=8\d\d\d max=4096/);
    expect(text.join("")).not.toMatch(/mqtt_status_rejected device_id=mq-1/); // cut off before the broker read it
    const retain = await connectMqtt(h, "mq-1", key);
    const closedRetain = new Promise<void>((resolve) => retain.once("close", () => resolve()));
    retain.publish("devices/mq-1/state", "sticky", { qos: 1, retain: true });
    await closedRetain;
    expect(text.join("")).toMatch(/mqtt_retain_denied device_id=mq-1/);
    // A later subscriber gets nothing retained.
    const watcher = await connectMqtt(h, "mq-1", key);
    const got: string[] = [];
    watcher.on("message", (topic) => got.push(topic));
    await watcher.subscribeAsync("devices/mq-1/#");
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toEqual([]);
    expect(storedState(h)).toEqual(before);
    tally.cases += 2;
    tally.refused += 2;
    watcher.end(true);
    big.end(true);
    retain.end(true);
  });
});

describe("rate limiting: per credential, per IP without one", () => {
  it("answers 429 with Retry-After, counts wrong guesses by address, and keeps credentials apart", async () => {
    const h = await startHarness({ rateLimits: { windowMs: 60_000, perIp: 5, perDevice: 4, perUser: 1000 } });
    try {
      const keyA = await registerDevice(h, "rl-a");
      const keyB = await registerDevice(h, "rl-b");
      const statuses = [];
      for (let i = 0; i < 6; i++) statuses.push((await api(h, "GET", "/api/v1/stats", { apiKey: `ota_dev_guess${i}` })).status);
      expect(statuses).toEqual([401, 401, 401, 401, 429, 429]); // the harness's own dev-token request from here was the fifth
      const limited = await api(h, "GET", "/api/v1/stats");
      expect(limited.status).toBe(429);
      expect(limited.body.error.code).toBe("RATE_LIMITED");
      expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
      // A valid credential is counted on its own, not by the address the guesses came from.
      const a = [];
      for (let i = 0; i < 5; i++) a.push((await api(h, "GET", "/api/v1/devices/rl-a/available-updates", { apiKey: keyA })).status);
      expect(a).toEqual([200, 200, 200, 200, 429]);
      expect((await api(h, "GET", "/api/v1/devices/rl-b/available-updates", { apiKey: keyB })).status).toBe(200);
    } finally {
      await h.close();
    }
  });
});
