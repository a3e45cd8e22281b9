// Manifests point devices at an address they can reach: the configured public URL, or else the address the device's
// own connection reached — never the default `localhost`, which some resolvers answer only with ::1 while the
// server listens on IPv4 (or the other way round).
import { afterEach, describe, expect, it } from "vitest";
import { firmwareDownloadPath, ROUTES, deviceUpdatePath } from "../../device/protocol/paths";
import type { Harness } from "./harness";
import { api, asAdmin, registerDevice, startHarness, uploadFirmware } from "./harness";
import { buildAppImage } from "../../esp-image/app-image";
import { createConnection } from "node:net";

let h: Harness | null = null;
let fw: { firmware_id: string } | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
  fw = null;
});

/** The manifest a device gets when it calls the server at `base` (e.g. http://127.0.0.1:port). */
async function offerVia(harness: Harness, base: string, deviceId = "dev-url") {
  const apiKey = await registerDevice(harness, deviceId, { device_model: "IOT-2024" });
  const image = (fw ??= await uploadFirmware(harness, { version: "1.1.0" }, buildAppImage({ version: "1.1.0", size: 8 * 1024 })));
  const assigned = await api(harness, "POST", deviceUpdatePath(deviceId), { ...asAdmin(harness), body: { firmware_id: image.firmware_id } });
  expect(assigned.status).toBeLessThan(300);
  const res = await fetch(base + ROUTES.availableUpdates.replace(":device_id", deviceId), { headers: { "x-api-key": apiKey } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { manifest: { download_url: string; firmware_id: string } };
  return body.manifest;
}

const portOf = (h: Harness) => new URL(h.server.url).port;

async function ipv6Loopback(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "::1", port: 9 });
    s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
    s.on("connect", () => (s.destroy(), resolve(true)));
  });
}

describe("download URLs in manifests", () => {
  it("without a public URL: the IPv4 address and port the device reached, not localhost", async () => {
    h = await startHarness({ host: "127.0.0.1" });
    const base = `http://127.0.0.1:${portOf(h)}`;
    const m = await offerVia(h, base);
    expect(m.download_url).toBe(base + firmwareDownloadPath(m.firmware_id));
  });

  it("without a public URL on a dual-stack listener: an IPv4 device gets IPv4, an IPv6 one [::1]", async (ctx) => {
    if (!(await ipv6Loopback())) return ctx.skip();
    h = await startHarness({ host: "::" });
    const v4 = await offerVia(h, `http://127.0.0.1:${portOf(h)}`, "dev-v4");
    expect(v4.download_url).toBe(`http://127.0.0.1:${portOf(h)}` + firmwareDownloadPath(v4.firmware_id));
    const v6 = await offerVia(h, `http://[::1]:${portOf(h)}`, "dev-v6");
    expect(v6.download_url).toBe(`http://[::1]:${portOf(h)}` + firmwareDownloadPath(v6.firmware_id));
  });

  it("a configured public URL wins, whatever the device reached", async () => {
    h = await startHarness({ host: "127.0.0.1", publicUrl: "https://ota.example.com:8443" });
    const m = await offerVia(h, `http://127.0.0.1:${portOf(h)}`);
    expect(m.download_url).toBe("https://ota.example.com:8443" + firmwareDownloadPath(m.firmware_id));
  });
});
