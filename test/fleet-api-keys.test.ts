// Fleet.start with devices registered beforehand (bench/fleet-scale.ts registers them, then writes their broker
// accounts): it registers none again, so the keys it was given stay the devices' keys.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fleet, fleetDeviceIds } from "../host-sim/fleet/fleet";
import { ManualClock } from "../server-stub/clock";
import { api, asAdmin, registerDevice, startHarness, type Harness } from "./server/harness";

describe("a fleet of devices registered beforehand", () => {
  let h: Harness;
  let fleet: Fleet | null = null;
  beforeAll(async () => {
    h = await startHarness({}, { dataDir: mkdtempSync(join(tmpdir(), "ota-fleet-keys-")), clock: new ManualClock(Date.now()) });
  });
  afterAll(async () => {
    await fleet?.stop();
    await h?.close();
  });

  it("boots them with the given keys and registers none again", async () => {
    const ids = fleetDeviceIds(2, "pre-");
    expect(ids).toEqual(["pre-001", "pre-002"]);
    const keys = new Map<string, string>();
    for (const id of ids) keys.set(id, await registerDevice(h, id, { device_model: "ESP32-DEVKIT" }));
    fleet = await Fleet.start({ devices: 2, prefix: "pre-", apiKeys: keys, serverUrl: h.server.url, token: h.admin, mqttUrl: null, pollIntervalMs: 600_000 });
    expect(fleet.versions()).toEqual({ "1.0.0": 2 });
    for (const id of ids) {
      // The key it registered with still answers: a second registration would have revoked it.
      expect((await api(h, "GET", `/api/v1/devices/${id}/available-updates?current_version=1.0.0`, { apiKey: keys.get(id)! })).status).toBe(200);
    }
  });

  it("refuses a fleet whose keys miss a device", async () => {
    await expect(Fleet.start({ devices: 2, prefix: "pre-", apiKeys: new Map([["pre-001", "k"]]), serverUrl: h.server.url, token: h.admin, mqttUrl: null }))
      .rejects.toThrow(/apiKeys has no key for pre-002/);
  });
});
