// Maintenance windows: a campaign offers updates only inside its windows (days, times, time zone),
// on the manual clock (which starts on Wednesday 2025-10-01 00:00 UTC).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { insideWindow, updatesAllowed } from "../../server-stub/campaigns/windows";
import { api, asAdmin, startHarness, type Harness } from "./harness";
import { campaign, createCampaign, inFlight, settle, setupFleet, start, type Fleet } from "./fleet";

describe("window arithmetic", () => {
  it("days, times and time zones, past midnight included", () => {
    const utc = { start: "02:00", end: "04:00" };
    expect(insideWindow(utc, Date.parse("2025-10-01T01:59:00Z"))).toBe(false);
    expect(insideWindow(utc, Date.parse("2025-10-01T02:00:00Z"))).toBe(true);
    expect(insideWindow(utc, Date.parse("2025-10-01T04:00:00Z"))).toBe(false);
    // Fridays 23:00 to 01:00 in Paris (UTC+2 in early October): Friday 2025-10-03 21:00Z .. Saturday 23:00Z.
    const paris = { days: ["fri" as const], start: "23:00", end: "01:00", time_zone: "Europe/Paris" };
    expect(insideWindow(paris, Date.parse("2025-10-03T20:59:00Z"))).toBe(false); // Fri 22:59
    expect(insideWindow(paris, Date.parse("2025-10-03T21:00:00Z"))).toBe(true); // Fri 23:00
    expect(insideWindow(paris, Date.parse("2025-10-03T22:30:00Z"))).toBe(true); // Sat 00:30, the Friday window
    expect(insideWindow(paris, Date.parse("2025-10-03T23:00:00Z"))).toBe(false); // Sat 01:00
    expect(insideWindow(paris, Date.parse("2025-10-04T21:30:00Z"))).toBe(false); // Sat 23:30: not a Friday
    expect(insideWindow(paris, Date.parse("2025-10-02T21:30:00Z"))).toBe(false); // Thu 23:30
    expect(updatesAllowed([], 0)).toBe(true);
  });
});

describe("campaigns with maintenance windows", () => {
  let h: Harness;
  let f: Fleet;
  beforeEach(async () => {
    h = await startHarness();
    f = await setupFleet(h, 2);
  });
  afterEach(() => h.close());

  it("a window holds updates until it opens; an update not begun is not offered once it closes", async () => {
    const id = await createCampaign(h, { firmware_id: f.fwNew.firmware_id, target_devices: ["d01", "d02"], max_concurrent_updates: 1, maintenance_windows: [{ start: "02:00", end: "03:00" }] });
    expect(await start(h, id)).toMatchObject({ status: "in_progress", in_maintenance_window: false, in_progress_devices: 0 });
    const offered = async (d: string) => (await api(h, "GET", `/api/v1/devices/${d}/available-updates`, { apiKey: f.keys.get(d) })).body.update_available;
    h.clock.advanceMinutes(119);
    expect(await inFlight(h, id)).toEqual([]);
    h.clock.advanceMinutes(1); // 02:00: open
    expect(await campaign(h, id)).toMatchObject({ in_maintenance_window: true });
    expect(await inFlight(h, id)).toEqual(["d01"]);
    expect(await offered("d01")).toBe(true);
    h.clock.advanceMinutes(60); // 03:00: closed before d01 began, so it waits for the next window (and cannot time out)
    expect(await offered("d01")).toBe(false);
    expect(await inFlight(h, id)).toEqual([]);
    expect(await campaign(h, id)).toMatchObject({ status: "in_progress", pending_devices: 2, failed_devices: 0, cancelled_devices: 0 });
    h.clock.advanceMinutes(23 * 60); // 02:00 the next day
    expect(await offered("d01")).toBe(true);
    expect(await inFlight(h, id)).toEqual(["d01"]);
    await settle(h, f, id);
    expect(await inFlight(h, id)).toEqual(["d02"]);
    await settle(h, f, id);
    expect(await campaign(h, id)).toMatchObject({ status: "completed", completed_devices: 2 });
  });

  it("an unknown time zone, an empty window or a bad time is a 400", async () => {
    for (const w of [{ start: "02:00", end: "04:00", time_zone: "Mars/Olympus" }, { start: "02:00", end: "02:00" }, { start: "24:00", end: "02:00" }, { start: "02:00", end: "04:00", days: ["someday"] }]) {
      const r = await api(h, "POST", "/api/v1/campaigns", { ...asAdmin(h), body: { name: "w", firmware_id: f.fwNew.firmware_id, target_devices: ["d01"], maintenance_windows: [w] } });
      expect([w, r.status, typeof r.body.error?.code]).toEqual([w, 400, "string"]);
    }
  });
});
