// device/protocol/paths.ts is the server's route table and every client's path builder: the two cannot drift.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  availableUpdatesPath, campaignActionPath, CAMPAIGN_ACTIONS, firmwareDownloadPath, groupDevicePath, PROTOCOL_LIMITS, queryString, routePath,
  ROUTES, updateStatusPath,
} from "../device/protocol";
import { api, asAdmin, registerDevice, startHarness, type Harness } from "./server/harness";

describe("REST paths", () => {
  let h: Harness;
  beforeAll(async () => (h = await startHarness()));
  afterAll(() => h?.close());

  it("the server registers exactly the routes of ROUTES", async () => {
    const doc = (await h.server.app.swagger()) as { paths: Record<string, unknown> };
    const registered = Object.keys(doc.paths).sort();
    const declared = Object.values(ROUTES).map((p) => p.replace(/:([a-z0-9_]+)/g, "{$1}")).sort();
    expect(registered).toEqual(declared);
  });

  it("builders %-encode parameters and query values and leave out absent ones", () => {
    expect(availableUpdatesPath("dev 1/x", { current_version: "1.0.0+b", device_model: "IOT-2024", hardware_version: undefined, chip_id: 0 }))
      .toBe("/api/v1/devices/dev%201%2Fx/available-updates?current_version=1.0.0%2Bb&device_model=IOT-2024&chip_id=0");
    expect(availableUpdatesPath("dev1")).toBe("/api/v1/devices/dev1/available-updates");
    expect(updateStatusPath("upd_1")).toBe("/api/v1/updates/upd_1/status");
    expect(firmwareDownloadPath("fw_v1.2.0+b")).toBe("/api/v1/firmware/fw_v1.2.0%2Bb/download");
    expect(groupDevicePath("g?", "d#")).toBe("/api/v1/groups/g%3F/devices/d%23");
    expect(CAMPAIGN_ACTIONS.map((a) => campaignActionPath("c1", a))).toEqual(CAMPAIGN_ACTIONS.map((a) => `/api/v1/campaigns/c1/${a}`));
    expect(queryString({ a: null, b: undefined })).toBe("");
    expect(() => routePath("update", {})).toThrow(/update_id/);
    expect(() => updateStatusPath("")).toThrow(/update_id/);
  });

  it("a built path reaches its route on the real server, with an id that needs encoding", async () => {
    const id = "dev:1";
    const key = await registerDevice(h, id);
    const r = await api(h, "GET", availableUpdatesPath(id, { current_version: "1.0.0", device_model: "IOT-2024", hardware_version: "1.0" }), { apiKey: key });
    expect([r.status, r.body]).toEqual([200, { update_available: false }]);
    const d = await api(h, "GET", routePath("device", { device_id: id }), asAdmin(h));
    expect([d.status, d.body.device_id, d.body.current_version]).toEqual([200, id, "1.0.0"]);
  });
});

describe("device/protocol/README.md", () => {
  it("lists every limit of limits.ts with its value", () => {
    const readme = readFileSync(new URL("../device/protocol/README.md", import.meta.url), "utf8");
    const rows = [...readme.matchAll(/^\| `([A-Z_]+)` \| ([0-9]+) \|/gm)].map((m) => [m[1], Number(m[2])]);
    expect(rows).toEqual(PROTOCOL_LIMITS.map((l) => [l.name, l.value]));
  });
});
