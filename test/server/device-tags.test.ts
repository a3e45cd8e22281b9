// Device tags: set by operators (at registration or PATCH /api/v1/devices/{id}), kept across a re-registration,
// added to an older data directory, and picked by a campaign's target_filter.tags (all of them), live and in
// the preview. Through the REST API on the manual clock.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDb } from "../../server-stub/db";
import { api, asAdmin, randomBytes, registerDevice, startHarness, uploadFirmware, type Harness } from "./harness";
import { campaign, devices, settle, start, type Fleet } from "./fleet";
import { pgMode } from "../support/test-database";

let h: Harness;
beforeEach(async () => (h = await startHarness()));
afterEach(() => h.close());

const tag = (id: string, tags: unknown) => api(h, "PATCH", `/api/v1/devices/${id}`, { ...asAdmin(h), body: { tags } });
const tagsOf = async (id: string) => (await api(h, "GET", `/api/v1/devices/${id}`, asAdmin(h))).body.tags;

describe("device tags", () => {
  it("are set at registration and by PATCH (replaced whole, deduplicated, sorted), kept by a re-registration, and filter the device list", async () => {
    await registerDevice(h, "t-1", { tags: ["site:berlin", "beta"] });
    await registerDevice(h, "t-2");
    expect(await tagsOf("t-1")).toEqual(["beta", "site:berlin"]);
    expect(await tagsOf("t-2")).toEqual([]);
    const r = await tag("t-2", ["site:berlin", "site:berlin", "floor=2"]);
    expect([r.status, r.body.tags]).toEqual([200, ["floor=2", "site:berlin"]]);
    await registerDevice(h, "t-1"); // re-keyed without tags: the operator's tags stay
    expect(await tagsOf("t-1")).toEqual(["beta", "site:berlin"]);
    const list = async (q: string) => (await api(h, "GET", `/api/v1/devices?${q}`, asAdmin(h))).body.devices.map((d: any) => d.device_id);
    expect(await list("tag=site:berlin")).toEqual(["t-1", "t-2"]);
    expect(await list("tag=beta")).toEqual(["t-1"]);
    expect((await tag("t-1", [])).body.tags).toEqual([]);
    const events = (await api(h, "GET", "/api/v1/events?device_id=t-2&type=device.updated", asAdmin(h))).body.events;
    expect(events.at(-1).data).toMatchObject({ tags: ["floor=2", "site:berlin"], previous_tags: [] });
  });

  it("bad tags are a 400 with a code; an unknown device is a 404; devices cannot tag themselves", async () => {
    const key = await registerDevice(h, "t-3");
    for (const bad of [["has space"], [""], ["x".repeat(65)], Array.from({ length: 33 }, (_, i) => `t${i}`), { beta: true }, [{}]]) {
      const r = await tag("t-3", bad);
      expect([JSON.stringify(bad).slice(0, 30), r.status, typeof r.body.error?.code]).toEqual([JSON.stringify(bad).slice(0, 30), 400, "string"]);
    }
    expect((await api(h, "PATCH", "/api/v1/devices/t-3", { ...asAdmin(h), body: { tags: ["a"], device_model: "X" } })).status).toBe(400);
    expect((await tag("nobody", ["a"])).status).toBe(404);
    expect((await api(h, "PATCH", "/api/v1/devices/t-3", { apiKey: key, body: { tags: ["a"] } })).status).toBe(403);
    expect(await tagsOf("t-3")).toEqual([]);
  });

  // A SQLite data dir from before the column: the PostgreSQL schema never lacked it, so the PG run skips this.
  it.skipIf(pgMode)("an older data directory gains the column", () => {
    const path = join(mkdtempSync(join(tmpdir(), "ota-tags-")), "ota.db");
    const old = openDb(path);
    old.exec("ALTER TABLE devices DROP COLUMN tags");
    old.prepare("INSERT INTO devices(device_id, registered, created_at, updated_at) VALUES ('old', 1, 0, 0)").run();
    old.close();
    const db = openDb(path);
    expect(db.prepare("SELECT tags FROM devices WHERE device_id = 'old'").get()).toEqual({ tags: null });
    db.close();
  });
});

describe("target_filter.tags", () => {
  it("picks exactly the devices carrying every listed tag; one tagged after the start joins; the preview agrees", async () => {
    const fwNew = await uploadFirmware(h, { version: "1.2.0" }, randomBytes(3000, 12));
    const keys = new Map<string, string>();
    const enrol = async (id: string, tags: string[]) => keys.set(id, await registerDevice(h, id, { tags }));
    await enrol("both-1", ["site:berlin", "beta"]);
    await enrol("both-2", ["beta", "site:berlin", "floor=2"]);
    await enrol("berlin-only", ["site:berlin"]);
    await enrol("beta-only", ["beta"]);
    await enrol("late", []);
    const created = await api(h, "POST", "/api/v1/campaigns", { ...asAdmin(h), body: {
      name: "tags", firmware_id: fwNew.firmware_id, deployment_strategy: "staged", batch_size: 1, target_filter: { tags: ["site:berlin", "beta"] },
    } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.campaign_id as string;
    const preview = (await api(h, "POST", `/api/v1/campaigns/${id}/preview`, asAdmin(h))).body;
    expect(preview.devices.map((d: any) => d.device_id).sort()).toEqual(["both-1", "both-2"]);
    expect((await start(h, id)).total_devices).toBe(2);
    expect((await devices(h, id)).map((d) => d.device_id).sort()).toEqual(preview.devices.map((d: any) => d.device_id).sort());
    const f: Fleet = { keys, ids: [], fwOld: null, fwNew };
    await settle(h, f, id, () => "silent"); // batch 1 stays in flight
    expect((await tag("late", ["beta", "site:berlin"])).status).toBe(200);
    expect((await tag("beta-only", ["beta", "site:munich"])).status).toBe(200); // still not all of them
    h.clock.advance(1000);
    const members = await devices(h, id);
    expect(members.map((d) => d.device_id).sort()).toEqual(["both-1", "both-2", "late"]);
    for (let i = 0; i < 3; i++) await settle(h, f, id);
    expect(await campaign(h, id)).toMatchObject({ status: "completed", total_devices: 3, completed_devices: 3 });
  });
});
