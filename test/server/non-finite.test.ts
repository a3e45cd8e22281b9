// Non-finite numbers (query "1e309", JSON 1e999) are bad input: a 400, never a 500 from SQLite.
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Harness } from "./harness";
import { api, asAdmin, startHarness } from "./harness";

let h: Harness;
beforeAll(async () => (h = await startHarness()));
afterAll(async () => h?.close());

it.each(["/api/v1/devices?limit=1e309", "/api/v1/devices?offset=1e309", "/api/v1/firmware?offset=-1e309", "/api/v1/campaigns?limit=1e309"])("GET %s → 400", async (path) => {
  expect((await api(h, "GET", path, asAdmin(h))).status).toBe(400);
});

it("a JSON body with 1e999 → 400", async () => {
  const r = await fetch(h.server.url + "/api/v1/devices", {
    method: "POST",
    headers: { authorization: `Bearer ${h.admin}`, "content-type": "application/json" },
    body: '{"device_id":"d1","device_model":"M","hardware_version":"1.0","current_version":"1.0.0","metadata":{"n":1e999}}',
  });
  expect(r.status).toBe(400);
});
