// Live targets with a real simulated fleet: a campaign whose target_filter names a group; devices that register
// after its start join it, take the update over MQTT and count towards its completion; the preview matched
// what the start then targeted; a device of another group is left alone.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppImage } from "../esp-image/app-image";
import { Fleet } from "../host-sim/fleet/fleet";
import { ManualClock } from "../server-stub/clock";
import { api, asAdmin, startHarness, uploadFirmware, type Harness } from "./server/harness";

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("fleet: live campaign targets", () => {
  let h: Harness;
  const fleets: Fleet[] = [];
  beforeAll(async () => {
    // Server time = real time: the devices check the manifests' validity window against their own clocks.
    h = await startHarness({}, { dataDir: mkdtempSync(join(tmpdir(), "ota-live-")), clock: new ManualClock(Date.now()) });
  });
  afterAll(async () => {
    for (const f of fleets) await f.stop();
    await h?.close();
  });

  const fleet = async (prefix: string, devices: number, group: string) => {
    const f = await Fleet.start({ devices, serverUrl: h.server.url, token: h.admin, prefix, group, factoryImage: buildAppImage({ version: "1.0.0", size: 32 * 1024 }) });
    fleets.push(f);
    await f.waitConnected(10_000);
    return f;
  };

  it("devices registered after the start join the running campaign and complete it", async () => {
    const early = await fleet("early-", 3, "live");
    const other = await fleet("other-", 1, "elsewhere");
    const fw = await uploadFirmware(h, { version: "1.1.0", device_model: "ESP32-DEVKIT" }, buildAppImage({ version: "1.1.0", size: 48 * 1024 }));
    const created = await api(h, "POST", "/api/v1/campaigns", {
      ...asAdmin(h), body: { name: "live", firmware_id: fw.firmware_id, deployment_strategy: "staged", batch_size: 2, target_filter: { groups: ["live"] } },
    });
    const id = created.body.campaign_id as string;
    const preview = (await api(h, "POST", `/api/v1/campaigns/${id}/preview`, asAdmin(h))).body;
    expect(preview.devices.map((d: any) => d.device_id).sort()).toEqual(["early-001", "early-002", "early-003"]);
    expect((await api(h, "POST", `/api/v1/campaigns/${id}/start`, asAdmin(h))).status).toBe(200);
    const members = async () => ((await api(h, "GET", `/api/v1/campaigns/${id}/devices`, asAdmin(h))).body.devices as Array<{ device_id: string; stage: number }>);
    expect((await members()).map((d) => ({ device_id: d.device_id, stage: d.stage }))).toEqual(preview.devices.map((d: any) => ({ device_id: d.device_id, stage: d.stage })));

    const late = await fleet("late-", 2, "live");
    h.clock.advance(1); // an engine tick (the system clock ticks every second)
    expect((await members()).map((d) => d.device_id).sort()).toEqual(["early-001", "early-002", "early-003", "late-001", "late-002"]);
    await until("the campaign to end", async () => (await api(h, "GET", `/api/v1/campaigns/${id}`, asAdmin(h))).body.status !== "in_progress");
    expect((await api(h, "GET", `/api/v1/campaigns/${id}`, asAdmin(h))).body).toMatchObject({ status: "completed", total_devices: 5, completed_devices: 5 });
    expect([early.versions(), late.versions(), other.versions()]).toEqual([{ "1.1.0": 3 }, { "1.1.0": 2 }, { "1.0.0": 1 }]);
  }, 60_000);
});
