// An ESP-IDF without esp_ota_resume (before v5.5; espota.c then throws ESP_ERR_NOT_SUPPORTED): after a power cut
// mid-download the agent begins the slot again from zero and downloads the image from its start, instead of
// failing the update. On Node and XS, with the OTA port answering as espota.c does on such an IDF.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OtaPortError } from "../device/core/ports";
import type { AgentRuntime } from "../host-sim/device/sim-device";
import type { World } from "./helpers/e2e";
import { assign, device, image, startWorld, upload } from "./helpers/e2e";

const RUNTIMES: AgentRuntime[] = ["node", "xs"];

describe.each(RUNTIMES)("resume on an IDF without esp_ota_resume, on %s", (runtime) => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld(runtime, { deltas: false, tls: false });
    await upload(w, "1.0.0");
  });
  afterAll(async () => w?.close());

  it("a power cut mid-download is followed by a download from the start, and the update completes", async () => {
    const bytes = image("1.6.0", "healthy", 500 * 1024);
    const fw = await upload(w, "1.6.0", { bytes });
    let refused = 0;
    const { dev } = await device(w, `${runtime}-no-resume`, {
      extra: {
        wrapPorts: (ports) => ({
          ...ports,
          ota: Object.assign(Object.create(ports.ota) as typeof ports.ota, {
            resume: () => {
              refused++;
              throw new OtaPortError("ESP_ERR_NOT_SUPPORTED", "esp_ota_resume: ESP_ERR_NOT_SUPPORTED (0x106)");
            },
          }),
        }),
      },
    });
    await assign(w, dev.options.id, fw);
    expect((await dev.powerOn()).kind).toBe("running");
    dev.flash.armFaults({ cutAfter: 100 });
    await dev.agent!.checkNow().catch((e) => e);
    expect(dev.flash.isPowered).toBe(false);
    const before = dev.http.downloaded;
    expect(before).toBeGreaterThan(64 * 1024); // past the first durable offset: a resume would be asked for
    const r = await dev.runCycle();
    expect(r).toMatchObject({ version: "1.6.0", lastBoot: "confirmed" });
    expect(refused).toBe(1);
    expect(dev.logs.join("\n")).toMatch(/esp_ota_resume not supported: downloading again from the start/);
    expect(dev.http.downloaded - before).toBeGreaterThanOrEqual(bytes.length);
  });
});
