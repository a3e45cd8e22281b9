// Webhook delivery against a real HTTP receiver: signature, retries with backoff after a failing receiver, order per campaign.
import { createHmac } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { eventsPath, ROUTES, webhookDeliveriesPath, webhookPath } from "../../device/protocol";
import { api, asAdmin, devToken, eventually, registerDevice, startHarness, type Harness } from "./harness";
import { createCampaign, settle, setupFleet, start } from "./fleet";

interface Received {
  headers: http.IncomingHttpHeaders;
  raw: string;
  body: any;
  answered: number | "dropped";
}

/** A real receiver; `answer` decides per request: an HTTP status, or "drop" to cut the connection. */
async function receiver(answer: (r: Omit<Received, "answered">, n: number) => number | "drop" = () => 200) {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (raw += c));
    req.on("end", () => {
      const r = { headers: req.headers, raw, body: JSON.parse(raw) };
      const a = answer(r, got.length);
      got.push({ ...r, answered: a === "drop" ? "dropped" : a });
      if (a === "drop") req.socket.destroy();
      else res.writeHead(a).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, got, ok: () => got.filter((g) => g.answered === 200), close: () => new Promise((r) => server.close(r)) };
}

let h: Harness;
const closers: Array<() => unknown> = [];
beforeEach(async () => {
  h = await startHarness({ webhooks: { retryBaseMs: 1000, retryMaxMs: 4000 } });
});
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  await h.close();
});

async function hook(body: Record<string, unknown>) {
  const r = await api(h, "POST", ROUTES.webhooks, { ...asAdmin(h), body });
  if (r.status !== 201) throw new Error(`webhook: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as { webhook_id: string; secret: string };
}

const pending = () => (h.server.ctx.db.prepare("SELECT COUNT(*) AS n FROM webhook_queue").get() as { n: number }).n;

/** Lets deliveries run, advancing the manual clock past each backoff, until nothing is queued. */
async function drain(maxRounds = 200) {
  for (let i = 0; i < maxRounds; i++) {
    await new Promise((r) => setImmediate(r));
    await h.server.events.webhooks.settled();
    if (pending() === 0) return;
    h.clock.advance(4000);
  }
  throw new Error(`${pending()} deliveries still queued`);
}

describe("webhook deliveries", () => {
  it("POSTs each event with its id, type and an HMAC-SHA256 signature of the raw body", async () => {
    const rx = await receiver();
    closers.push(rx.close);
    const mine = await hook({ url: rx.url, secret: "s3cret-s3cret-s3cret" });
    const generated = await hook({ url: rx.url, types: ["device.registered"] });
    expect(generated.secret).toMatch(/^[0-9a-f]{64}$/);
    await registerDevice(h, "dev-a");
    await eventually(() => rx.got.length === 2);
    const json = (await api(h, "GET", eventsPath({ type: "device.registered" }), asAdmin(h))).body.events;
    for (const [g, secret] of rx.got.map((g) => [g, g.headers["x-ota-webhook-id"] === mine.webhook_id ? "s3cret-s3cret-s3cret" : generated.secret] as const)) {
      expect(g.headers["x-ota-signature"]).toBe(`sha256=${createHmac("sha256", secret).update(g.raw).digest("hex")}`);
      expect([g.headers["x-ota-event-id"], g.headers["x-ota-event-type"], g.headers["content-type"]]).toEqual([String(json[0].id), "device.registered", "application/json"]);
      expect(g.body).toEqual(json[0]);
    }
    // The secret is shown once: the list does not carry it.
    const list = (await api(h, "GET", ROUTES.webhooks, asAdmin(h))).body.webhooks;
    expect(list.map((w: any) => w.webhook_id)).toEqual([mine.webhook_id, generated.webhook_id]);
    expect(JSON.stringify(list)).not.toContain(generated.secret);
  });

  it("retries a failing receiver with exponential backoff; the delivery log shows every attempt", async () => {
    const rx = await receiver((_r, n) => (n === 0 ? 500 : n === 1 ? "drop" : 200));
    closers.push(rx.close);
    const w = await hook({ url: rx.url });
    await registerDevice(h, "dev-b");
    await eventually(() => rx.got.length === 1);
    await h.server.events.webhooks.settled();
    await new Promise((r) => setTimeout(r, 100));
    expect(rx.got.length).toBe(1); // not before the backoff (1 s of clock time)
    h.clock.advance(1000);
    await eventually(() => rx.got.length === 2);
    await h.server.events.webhooks.settled();
    h.clock.advance(1000);
    await new Promise((r) => setTimeout(r, 100));
    expect(rx.got.length).toBe(2); // the second backoff is 2 s
    h.clock.advance(1000);
    await eventually(() => rx.got.length === 3);
    await drain();
    expect(rx.got.map((g) => g.answered)).toEqual([500, "dropped", 200]);
    expect(new Set(rx.got.map((g) => g.raw)).size).toBe(1); // the same event, the same bytes
    const log = (await api(h, "GET", webhookDeliveriesPath(w.webhook_id), asAdmin(h))).body;
    expect(log.deliveries.map((d: any) => [d.event_type, d.attempt, d.status_code, d.ok])).toEqual([
      ["device.registered", 1, 500, false], ["device.registered", 2, null, false], ["device.registered", 3, 200, true],
    ]);
    expect(log.deliveries[0].error).toBe("HTTP 500");
    expect(log.deliveries[1].error).toMatch(/^(UND_ERR_SOCKET|ECONNRESET): /);
    expect(log.pending_deliveries).toBe(0);
  });

  it("a queued delivery survives a restart of the server", async () => {
    let up = false;
    const rx = await receiver(() => (up ? 200 : 503));
    closers.push(rx.close);
    const w = await hook({ url: rx.url, types: ["device."] });
    await registerDevice(h, "dev-c");
    await eventually(() => rx.got.length === 1);
    await h.server.events.webhooks.settled();
    await h.restart();
    up = true;
    h.clock.advance(1000);
    await eventually(() => rx.got.length === 2);
    await drain();
    expect(rx.got.map((g) => [g.body.type, g.body.device_id, g.answered])).toEqual([["device.registered", "dev-c", 503], ["device.registered", "dev-c", 200]]);
    const log = (await api(h, "GET", webhookDeliveriesPath(w.webhook_id), asAdmin(h))).body;
    expect(log.deliveries.map((d: any) => [d.attempt, d.ok])).toEqual([[1, false], [2, true]]);
  });

  it("keeps each campaign's events in order under retries, while another campaign's lane goes on", async () => {
    const f = await setupFleet(h, 6);
    // Every event of campaign A fails twice before it is taken; campaign B's are taken at once.
    const tries = new Map<number, number>();
    let campA = "";
    const rx = await receiver((r) => {
      if (r.body.campaign_id !== campA) return 200;
      const n = (tries.get(r.body.id) ?? 0) + 1;
      tries.set(r.body.id, n);
      return n <= 2 ? 503 : 200;
    });
    closers.push(rx.close);
    await hook({ url: rx.url, types: ["campaign.", "update."] });
    campA = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids.slice(0, 3), deployment_strategy: "staged", batch_size: 2 });
    const campB = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids.slice(3), deployment_strategy: "staged", batch_size: 2 });
    await start(h, campA);
    await start(h, campB);
    await settle(h, f, campB);
    await settle(h, f, campB);
    // B finished its whole story while A's first event is still being retried.
    await eventually(() => rx.ok().some((g) => g.body.type === "campaign.completed" && g.body.campaign_id === campB));
    expect(rx.ok().filter((g) => g.body.campaign_id === campA)).toEqual([]);
    await settle(h, f, campA);
    await settle(h, f, campA);
    await drain();
    const json = (await api(h, "GET", eventsPath({ type: "campaign.,update.", limit: 500 }), asAdmin(h))).body.events as any[];
    for (const c of [campA, campB]) {
      const expected = json.filter((e) => e.campaign_id === c).map((e) => e.id);
      expect(rx.ok().filter((g) => g.body.campaign_id === c).map((g) => g.body.id)).toEqual(expected);
      // An event is only sent after the one before it was taken: no attempt of an event before that.
      const attempts = rx.got.filter((g) => g.body.campaign_id === c).map((g) => g.body.id);
      expect(attempts).toEqual([...attempts].sort((a, b) => a - b));
    }
    expect(json.filter((e) => e.campaign_id === campA).at(-1).type).toBe("campaign.completed");
    expect([...tries.values()].every((n) => n === 3)).toBe(true);
  });

  it("refuses what it cannot or should not deliver to; admin and operator only", async () => {
    const bad = async (body: Record<string, unknown>) => {
      const r = await api(h, "POST", ROUTES.webhooks, { ...asAdmin(h), body });
      return [r.status, r.body.error?.code];
    };
    expect(await bad({ url: "http://hooks.example.com/x" })).toEqual([400, "INSECURE_WEBHOOK_URL"]);
    expect(await bad({ url: "ftp://127.0.0.1/x" })).toEqual([400, "INVALID_WEBHOOK_URL"]);
    expect(await bad({ url: "not a url" })).toEqual([400, "INVALID_WEBHOOK_URL"]);
    expect(await bad({ url: "https://hooks.example.com/x", types: ["campaign.nope"] })).toEqual([400, "UNKNOWN_EVENT_TYPE"]);
    expect(await bad({ url: "https://hooks.example.com/x", campaign_id: "camp_missing" })).toEqual([404, "CAMPAIGN_NOT_FOUND"]);
    expect(await bad({ url: "https://hooks.example.com/x", secret: "short" })).toEqual([400, "VALIDATION_ERROR"]);
    const viewer = (await devToken(h, { user_id: "v", role: "viewer" })).access_token;
    expect((await api(h, "GET", ROUTES.webhooks, { token: viewer })).status).toBe(403);
    const w = await hook({ url: "https://hooks.example.com/x" });
    expect((await api(h, "DELETE", webhookPath(w.webhook_id), asAdmin(h))).status).toBe(204);
    expect((await api(h, "DELETE", webhookPath(w.webhook_id), asAdmin(h))).status).toBe(404);
    expect((await api(h, "GET", webhookDeliveriesPath(w.webhook_id), asAdmin(h))).status).toBe(404);
    await h.restart({ allowHttpWebhooks: true });
    expect((await api(h, "POST", ROUTES.webhooks, { ...asAdmin(h), body: { url: "http://hooks.example.com/x" } })).status).toBe(201);
  });
});
