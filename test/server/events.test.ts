// The event stream: a real campaign run seen over SSE, filters, resume after Last-Event-ID, roles, thinning, retention.
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDb } from "../../server-stub/db";
import { recordEvent } from "../../server-stub/events/store";
import { eventsPath } from "../../device/protocol";
import { api, asAdmin, devToken, report, startHarness, type Harness } from "./harness";
import { campaign, createCampaign, settle, setupFleet, start, type Fleet } from "./fleet";
import { openSse, type SseStream } from "./sse";
import { pgMode } from "../support/test-database";

let h: Harness;
let f: Fleet;
const streams: SseStream[] = [];
beforeEach(async () => {
  h = await startHarness({ sseKeepAliveMs: 100 });
  f = await setupFleet(h, 4);
});
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  await h.close();
});

async function sse(path: string, opts: Parameters<typeof openSse>[2] = { token: h.admin }): Promise<SseStream> {
  const s = await openSse(h, path, opts);
  streams.push(s);
  return s;
}

const allEvents = async (query: Record<string, string | number> = {}) => (await api(h, "GET", eventsPath({ limit: 500, ...query }), asAdmin(h))).body.events as any[];
const hasType = (t: string) => (frames: { event: string }[]) => frames.some((x) => x.event === t);

/** A staged campaign (2 batches of 2) run to completion on the manual clock; d02 fails its self-test. */
async function runCampaign(): Promise<string> {
  const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids, deployment_strategy: "staged", batch_size: 2, failure_threshold_percent: 60 });
  await start(h, id);
  await settle(h, f, id, (d) => (d === "d02" ? "rolled_back" : "completed"));
  await settle(h, f, id);
  return id;
}

describe("GET /api/v1/events over SSE", () => {
  it("streams every state change of a real campaign run, in id order, as the JSON mode lists them", async () => {
    const s = await sse(eventsPath({ type: "campaign.,update." }));
    expect(s.status).toBe(200);
    const id = await runCampaign();
    expect((await campaign(h, id)).status).toBe("completed");
    await s.until(hasType("campaign.completed"));
    const types = s.frames.map((x) => x.event);
    expect(types.filter((t) => t.startsWith("campaign."))).toEqual([
      "campaign.created", "campaign.started", "campaign.stage_started", "campaign.stage_completed", "campaign.stage_started", "campaign.stage_completed", "campaign.completed",
    ]);
    // Every device: scheduled → downloading → installing → completed (d02: rolled_back).
    for (const d of f.ids) {
      const mine = s.frames.filter((x) => x.data.device_id === d).map((x) => x.event);
      expect(mine).toEqual(["update.scheduled", "update.downloading", "update.installing", d === "d02" ? "update.rolled_back" : "update.completed"]);
    }
    const rolled = s.frames.find((x) => x.event === "update.rolled_back")!.data;
    expect(rolled).toMatchObject({ campaign_id: id, device_id: "d02", data: { status: "rolled_back", error_code: "SELF_TEST_FAILED" } });
    const ids = s.frames.map((x) => x.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    // The frame's id and event agree with its data, and with what the JSON mode returns.
    for (const x of s.frames) expect([x.data.id, x.data.type]).toEqual([x.id, x.event]);
    expect(await allEvents({ type: "campaign.,update." })).toEqual(s.frames.map((x) => x.data));
    expect(s.comments).toContain("connected");
  });

  it("filters by campaign, device and type prefix (repeatable or comma-separated); an unknown type is a 400", async () => {
    const other = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: ["d01"] });
    const byCampaign = await sse(eventsPath({ campaign_id: other }));
    const byDevice = await sse(eventsPath({ device_id: "d03" }));
    const byTypes = await sse(`${eventsPath()}?type=update.completed&type=campaign.stage_`);
    const id = await runCampaign();
    await byTypes.until((fr) => fr.filter((x) => x.event === "update.completed").length === 3 && fr.filter((x) => x.event === "campaign.stage_completed").length === 2);
    await byDevice.until((fr) => fr.some((x) => x.event === "update.completed"));
    expect(byTypes.frames.every((x) => x.event === "update.completed" || x.event.startsWith("campaign.stage_"))).toBe(true);
    await byDevice.until(hasType("device.version_changed"));
    expect(byDevice.frames.map((x) => x.event)).toEqual(["update.scheduled", "update.downloading", "update.installing", "update.completed", "device.version_changed"]);
    expect(byDevice.frames.every((x) => x.data.device_id === "d03" && x.data.campaign_id === id)).toBe(true);
    // The same filters on a replay from the database (JSON, and SSE from after=0).
    const stored = await allEvents({ device_id: "d03" });
    expect(stored.map((e) => e.type)).toEqual(["device.registered", ...byDevice.frames.map((x) => x.event)]);
    const replay = await sse(eventsPath({ device_id: "d03", type: "update.,device.version", after: 0 }));
    await replay.until((fr) => fr.length >= 5);
    expect(replay.frames.map((x) => x.data)).toEqual(stored.slice(1));
    // The stream of the other campaign had only its creation before we connected: nothing since.
    await new Promise((r) => setTimeout(r, 150));
    expect(byCampaign.frames).toEqual([]);
    expect((await allEvents({ campaign_id: other })).map((e) => e.type)).toEqual(["campaign.created"]);
    const bad = await api(h, "GET", eventsPath({ type: "campaign.,updates" }), asAdmin(h));
    expect([bad.status, bad.body.error.code]).toEqual([400, "UNKNOWN_EVENT_TYPE"]);
  });

  it("resumes after Last-Event-ID (or ?after=) with exactly the events it missed", async () => {
    const first = await sse(eventsPath());
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: f.ids, deployment_strategy: "staged", batch_size: 2 });
    await start(h, id);
    await first.until(hasType("campaign.stage_started"));
    const seen = first.frames.map((x) => x.id);
    const last = seen[seen.length - 1]!;
    first.close();
    await settle(h, f, id);
    await settle(h, f, id); // missed while disconnected
    const missed = (await allEvents({ after: last })).map((e) => e.id);
    expect(missed.length).toBeGreaterThan(10);
    const resumed = await sse(eventsPath(), { token: h.admin, lastEventId: last });
    await resumed.until((fr) => fr.length >= missed.length);
    expect(resumed.frames.map((x) => x.id)).toEqual(missed);
    const viaQuery = await sse(eventsPath({ after: last }));
    await viaQuery.until((fr) => fr.length >= missed.length);
    expect(viaQuery.frames.map((x) => x.id)).toEqual(missed);
    // Live again after catching up: the next event arrives on the resumed stream.
    await api(h, "POST", `/api/v1/campaigns`, { ...asAdmin(h), body: { name: "next", firmware_id: f.fwNew.firmware_id, target_devices: ["d01"] } });
    await resumed.until(hasType("campaign.created"));
    expect(resumed.frames.slice(missed.length).map((x) => x.event)).toEqual(["campaign.created"]);
    const badHeader = await api(h, "GET", eventsPath(), { token: h.admin, headers: { accept: "text/event-stream", "last-event-id": "abc" } });
    expect([badHeader.status, badHeader.body.error.code]).toEqual([400, "INVALID_LAST_EVENT_ID"]);
  });

  it("a slow reader catching up on a long backlog while new events arrive gets each event once, in order", async () => {
    const db = h.server.ctx.db;
    const filler = (n: number, from: number) => db.transaction(() => {
      for (let i = 0; i < n; i++) recordEvent(db, { type: "device.updated", at: h.clock.now(), device_id: `bulk-${from + i}`, data: { pad: "x".repeat(300) } });
    })();
    filler(20_000, 0);
    const total = (await api(h, "GET", eventsPath({ limit: 1 }), asAdmin(h))).body.events[0].id - 1 + 20_000 + 4 + 2_000;
    const s = await sse(eventsPath({ after: 0 }));
    s.pause();
    filler(1_000, 20_000); // live while the reader is stuck in its backlog
    await new Promise((r) => setTimeout(r, 300));
    filler(1_000, 21_000);
    s.resume();
    const frames = await s.until((fr) => fr.length >= total, 20_000);
    expect(frames.length).toBe(total);
    expect(frames.map((x) => x.id)).toEqual(Array.from({ length: total }, (_, i) => frames[0]!.id + i));
    expect(frames.at(-1)!.data.device_id).toBe("bulk-21999");
  });

  it("a viewer may read, a device key may not; keep-alive comments flow", async () => {
    const viewer = (await devToken(h, { user_id: "v", role: "viewer" })).access_token;
    const s = await sse(eventsPath(), { token: viewer });
    expect(s.status).toBe(200);
    await s.until(() => s.comments.includes("keep-alive"), 2000);
    expect((await api(h, "GET", eventsPath(), { token: viewer })).status).toBe(200);
    const device = await sse(eventsPath(), { apiKey: f.keys.get("d01") });
    expect(device.status).toBe(403);
    expect((await api(h, "GET", eventsPath(), { apiKey: f.keys.get("d01") })).status).toBe(403);
    expect((await api(h, "GET", eventsPath())).status).toBe(401);
    // Shutting down ends open streams instead of waiting for them.
    const t0 = Date.now();
    const restarting = h.restart();
    await s.ended;
    expect(Date.now() - t0).toBeLessThan(3000); // the close, not the boot after it (migrations on PostgreSQL)
    await restarting;
  });
});

describe("events in the database", () => {
  it("JSON pages: limit, next_after; device registration and version changes are events", async () => {
    const page1 = (await api(h, "GET", eventsPath({ limit: 2 }), asAdmin(h))).body;
    expect(page1.events.map((e: any) => e.type)).toEqual(["device.registered", "device.registered"]);
    const page2 = (await api(h, "GET", eventsPath({ limit: 2, after: page1.next_after }), asAdmin(h))).body;
    expect(page2.events[0].id).toBeGreaterThan(page1.next_after);
    expect((await api(h, "GET", eventsPath({ limit: 501 }), asAdmin(h))).status).toBe(400);
    await api(h, "GET", "/api/v1/devices/d01/available-updates?current_version=1.0.1", { apiKey: f.keys.get("d01") });
    const changed = await allEvents({ type: "device.version_changed" });
    expect(changed.map((e) => [e.device_id, e.data.from_version, e.data.to_version])).toEqual([["d01", "1.0.0", "1.0.1"]]);
  });

  it("thins progress reports to 25 % steps but keeps every status change", async () => {
    const u = (await api(h, "POST", "/api/v1/devices/d01/update", { ...asAdmin(h), body: { firmware_id: f.fwNew.firmware_id } })).body;
    const steps = [0, 5, 10, 20, 30, 45, 55, 60, 80, 99].map((progress) => ({ status: "downloading", progress }));
    await report(h, f.keys.get("d01")!, u.update_id, ...steps, { status: "installing", progress: 99 });
    const got = (await allEvents({ device_id: "d01", type: "update." })).map((e) => `${e.data.status}:${e.data.progress}`);
    expect(got).toEqual(["scheduled:0", "downloading:0", "downloading:30", "downloading:55", "downloading:80", "installing:99"]);
  });

  it("prunes events older than the retention; the campaign stats keep reading campaign events", async () => {
    await h.restart({ eventRetentionDays: 2 });
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: ["d01"] });
    h.clock.advanceMinutes(24 * 60);
    await start(h, id);
    expect((await api(h, "GET", `/api/v1/stats/campaigns/${id}`, asAdmin(h))).body.events.map((e: any) => e.type)).toEqual(["stage_started", "started", "created"]);
    const before = (await allEvents()).length;
    h.clock.advanceMinutes(24 * 60 + 1); // the registrations and the creation are now older than 2 days
    const left = await allEvents();
    const cutoff = h.clock.now() - 2 * 24 * 3600_000;
    expect(left.every((e) => Date.parse(e.at) >= cutoff)).toBe(true);
    expect(left.slice(0, 3).map((e) => e.type)).toEqual(["campaign.started", "campaign.stage_started", "update.scheduled"]);
    expect(before).toBe(3 + 5); // 4 registrations and the creation were there
  });

  // A SQLite file from before the events table: PostgreSQL databases start at the current schema, so the PG run skips this.
  it.skipIf(pgMode)("migrates an older database: campaign_events rows become campaign.* events, and a view keeps the old name", () => {
    const dir = mkdtempSync(join(tmpdir(), "ota-migrate-"));
    try {
      const old = new Database(join(dir, "ota.sqlite"));
      old.exec("CREATE TABLE campaign_events (id INTEGER PRIMARY KEY AUTOINCREMENT, campaign_id TEXT NOT NULL, at INTEGER NOT NULL, type TEXT NOT NULL, detail TEXT)");
      old.prepare("INSERT INTO campaign_events(campaign_id, at, type, detail) VALUES (?, ?, ?, ?)").run("camp_1", 1000, "created", '{"by":"x"}');
      old.prepare("INSERT INTO campaign_events(campaign_id, at, type, detail) VALUES (?, ?, ?, ?)").run("camp_1", 2000, "started", null);
      old.close();
      const db = openDb(join(dir, "ota.sqlite"));
      expect(db.prepare("SELECT type, campaign_id, at, data FROM events ORDER BY id").all()).toEqual([
        { type: "campaign.created", campaign_id: "camp_1", at: 1000, data: '{"by":"x"}' },
        { type: "campaign.started", campaign_id: "camp_1", at: 2000, data: "{}" },
      ]);
      expect(db.prepare("SELECT type FROM sqlite_master WHERE name = 'campaign_events'").get()).toEqual({ type: "view" });
      expect(db.prepare("SELECT type, detail FROM campaign_events ORDER BY id").all()).toEqual([{ type: "created", detail: '{"by":"x"}' }, { type: "started", detail: "{}" }]);
      db.close();
      openDb(join(dir, "ota.sqlite")).close(); // a second open changes nothing
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
