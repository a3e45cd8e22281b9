import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppImage } from "../../esp-image/app-image";
import { api, asAdmin, firmwareForm, randomBytes, registerDevice, startHarness, uploadFirmware, type Harness } from "./harness";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

describe("firmware", () => {
  let h: Harness;
  const raw = randomBytes(300_000, 7);
  beforeAll(async () => {
    h = await startHarness({ maxUploadBytes: 2 * 1024 * 1024 });
  });
  afterAll(() => h.close());

  it("uploads a raw image with HOWTO metadata and returns the Firmware model", async () => {
    const meta = { name: "Device Firmware", version: "1.2.0", description: "Security patches and improvements", device_model: "IOT-2024", manufacturer: "IoT Corp", tags: ["stable"], is_security_update: true, min_hardware_version: "1.0", max_hardware_version: "2.0" };
    const r = await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: firmwareForm(meta, raw, false) }); // metadata after the file works too
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ firmware_id: "fw_v1.2.0", ...meta, file_size: raw.length, checksum_sha256: sha(raw), checksum_md5: md5(raw), image_format: "raw", chip_id: null, secure_version: 0 });
    expect(r.body.file_url).toBe(`${h.server.url}/api/v1/firmware/fw_v1.2.0/download`);
    const got = await api(h, "GET", "/api/v1/firmware/fw_v1.2.0", asAdmin(h));
    expect(got.body).toEqual(r.body);
  });

  it("rejects duplicates, missing parts, bad metadata, empty and oversized files with 4xx", async () => {
    const dup = await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: firmwareForm({ version: "1.2.0", device_model: "IOT-2024" }, raw) });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe("FIRMWARE_EXISTS");
    const noFile = new FormData();
    noFile.append("metadata", JSON.stringify({ version: "9.9.9", device_model: "IOT-2024" }));
    expect((await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: noFile })).body.error.code).toBe("INVALID_UPLOAD");
    const badJson = new FormData();
    badJson.append("metadata", "{not json");
    badJson.append("file", new Blob([raw]), "f.bin");
    const bj = await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: badJson });
    expect([bj.status, bj.body.error.code]).toEqual([400, "INVALID_METADATA"]);
    const noModel = await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: firmwareForm({ version: "3.0.0" }, raw) });
    expect([noModel.status, noModel.body.error.code]).toEqual([400, "INVALID_METADATA"]);
    const noVersion = await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: firmwareForm({ device_model: "IOT-2024" }, raw) });
    expect(noVersion.status).toBe(400);
    const empty = await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: firmwareForm({ version: "3.0.1", device_model: "IOT-2024" }, new Uint8Array(0)) });
    expect(empty.status).toBe(400);
    const huge = await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: firmwareForm({ version: "3.0.2", device_model: "IOT-2024" }, new Uint8Array(3 * 1024 * 1024)) });
    expect([huge.status, huge.body.error.code]).toEqual([413, "FILE_TOO_LARGE"]);
    const json = await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: { version: "1" } });
    expect(json.status).toBe(415);
    // Nothing of the rejected uploads is left behind.
    const list = await api(h, "GET", "/api/v1/firmware", asAdmin(h));
    expect(list.body.firmware.map((f: any) => f.version)).toEqual(["1.2.0"]);
  });

  it("verifies ESP app images and takes version, chip id and secure_version from them", async () => {
    const img = buildAppImage({ version: "2.0.0", secureVersion: 3, chipId: 9 });
    const fw = await uploadFirmware(h, { device_model: "ESP32-S3-BOARD" }, img); // no version: taken from esp_app_desc_t
    expect(fw).toMatchObject({ version: "2.0.0", image_format: "esp-app", chip_id: 9, secure_version: 3, project_name: "ota-sim-app", checksum_sha256: sha(img) });
    const mismatch = await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: firmwareForm({ version: "2.0.1", device_model: "ESP32-S3-BOARD" }, buildAppImage({ version: "2.0.2" })) });
    expect([mismatch.status, mismatch.body.error.code]).toEqual([400, "VERSION_MISMATCH"]);
    const corrupt = buildAppImage({ version: "2.0.3" });
    corrupt[0x400] ^= 0xff; // segment data: checksum/hash no longer match
    const bad = await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: firmwareForm({ device_model: "ESP32-S3-BOARD" }, corrupt) });
    expect([bad.status, bad.body.error.code]).toEqual([400, "IMAGE_INVALID"]);
    expect(bad.body.error.details.check).toMatch(/checksum|sha256/);
    const truncated = buildAppImage({ version: "2.0.4" }).subarray(0, 1000);
    expect((await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: firmwareForm({ device_model: "ESP32-S3-BOARD" }, truncated) })).body.error.code).toBe("IMAGE_INVALID");
  });

  it("accepts metadata as a file part (`-F metadata=@firmware-metadata.json`, the HOWTO's CI example)", async () => {
    const form = new FormData();
    form.append("metadata", new Blob([JSON.stringify({ version: "0.9.0", device_model: "CI-BOARD", changelog: "ci" })], { type: "application/json" }), "firmware-metadata.json");
    form.append("file", new Blob([randomBytes(500, 5)]), "firmware.bin");
    const r = await api(h, "POST", "/api/v1/firmware", { ...asAdmin(h), body: form });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ version: "0.9.0", device_model: "CI-BOARD", changelog: "ci", name: "firmware.bin" });
  });

  it("lists with device_model, limit and offset", async () => {
    await uploadFirmware(h, { version: "1.3.0" }, randomBytes(1000, 2));
    const all = await api(h, "GET", "/api/v1/firmware?device_model=IOT-2024&limit=10", asAdmin(h));
    expect(all.body.total).toBe(2);
    expect(all.body.firmware.map((f: any) => f.version)).toEqual(["1.3.0", "1.2.0"]);
    const page = await api(h, "GET", "/api/v1/firmware?device_model=IOT-2024&limit=1&offset=1", asAdmin(h));
    expect(page.body.firmware.map((f: any) => f.version)).toEqual(["1.2.0"]);
    expect((await api(h, "GET", "/api/v1/firmware?limit=0", asAdmin(h))).status).toBe(400);
    expect((await api(h, "GET", "/api/v1/firmware/fw_nope", asAdmin(h))).status).toBe(404);
  });

  it("downloads whole files with length, ETag and SHA-256 headers", async () => {
    const res = await fetch(`${h.server.url}/api/v1/firmware/fw_v1.2.0/download`, { headers: { authorization: `Bearer ${h.admin}` } });
    expect(res.status).toBe(200);
    const body = new Uint8Array(await res.arrayBuffer());
    expect(sha(body)).toBe(sha(raw));
    expect(res.headers.get("content-length")).toBe(String(raw.length));
    expect(res.headers.get("etag")).toBe(`"${sha(raw)}"`);
    expect(res.headers.get("x-checksum-sha256")).toBe(sha(raw));
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    const cached = await fetch(`${h.server.url}/api/v1/firmware/fw_v1.2.0/download`, { headers: { authorization: `Bearer ${h.admin}`, "if-none-match": `"${sha(raw)}"` } });
    expect(cached.status).toBe(304);
  });

  it("answers single Range requests with 206 and unsatisfiable ones with 416", async () => {
    const get = (range: string, extra: Record<string, string> = {}) => fetch(`${h.server.url}/api/v1/firmware/fw_v1.2.0/download`, { headers: { authorization: `Bearer ${h.admin}`, range, ...extra } });
    const cases: Array<[string, number, number]> = [["bytes=0-99", 0, 99], ["bytes=1000-", 1000, raw.length - 1], ["bytes=-500", raw.length - 500, raw.length - 1], ["bytes=299990-999999", 299990, raw.length - 1]];
    for (const [range, start, end] of cases) {
      const r = await get(range);
      expect(r.status, range).toBe(206);
      expect(r.headers.get("content-range")).toBe(`bytes ${start}-${end}/${raw.length}`);
      const part = new Uint8Array(await r.arrayBuffer());
      expect(part.length).toBe(end - start + 1);
      expect(Buffer.from(part).equals(Buffer.from(raw.subarray(start, end + 1)))).toBe(true);
    }
    const r416 = await get(`bytes=${raw.length}-`);
    expect(r416.status).toBe(416);
    expect(r416.headers.get("content-range")).toBe(`bytes */${raw.length}`);
    expect(((await r416.json()) as any).error.code).toBe("RANGE_NOT_SATISFIABLE");
    const multi = await get("bytes=0-1,5-9"); // multi-range: whole file
    expect([multi.status, (await multi.arrayBuffer()).byteLength]).toEqual([200, raw.length]);
    const stale = await get("bytes=0-9", { "if-range": '"stale"' }); // changed entity: whole file
    expect([stale.status, (await stale.arrayBuffer()).byteLength]).toEqual([200, raw.length]);
  });

  it("counts bytes served in stats", async () => {
    const before = (await api(h, "GET", "/api/v1/stats", asAdmin(h))).body.bytes_served;
    await (await fetch(`${h.server.url}/api/v1/firmware/fw_v1.2.0/download`, { headers: { authorization: `Bearer ${h.admin}`, range: "bytes=0-1023" } })).arrayBuffer();
    const after = (await api(h, "GET", "/api/v1/stats", asAdmin(h))).body.bytes_served;
    expect(after - before).toBe(1024);
    // HEAD: the real length, nothing served
    const head = await fetch(`${h.server.url}/api/v1/firmware/fw_v1.2.0/download`, { method: "HEAD", headers: { authorization: `Bearer ${h.admin}` } });
    expect([head.status, head.headers.get("content-length"), head.headers.get("etag")]).toEqual([200, String(raw.length), `"${sha(raw)}"`]);
    expect((await api(h, "GET", "/api/v1/stats", asAdmin(h))).body.bytes_served).toBe(after);
  });

  it("lets a device download only firmware offered to it", async () => {
    const key = await registerDevice(h, "dl-dev", { current_version: "1.0.0" });
    const denied = await fetch(`${h.server.url}/api/v1/firmware/fw_v1.2.0/download`, { headers: { "x-api-key": key } });
    expect(denied.status).toBe(403);
    expect((await api(h, "POST", "/api/v1/devices/dl-dev/update", { ...asAdmin(h), body: { firmware_id: "fw_v1.2.0" } })).status).toBe(201);
    const ok = await fetch(`${h.server.url}/api/v1/firmware/fw_v1.2.0/download`, { headers: { "x-api-key": key } });
    expect(ok.status).toBe(200);
    expect(sha(new Uint8Array(await ok.arrayBuffer()))).toBe(sha(raw));
    expect((await fetch(`${h.server.url}/api/v1/firmware/fw_v1.3.0/download`, { headers: { "x-api-key": key } })).status).toBe(403);
  });

  it("checks compatibility per device with reasons", async () => {
    await registerDevice(h, "cc-ok", { current_version: "1.1.0", hardware_version: "1.5" });
    await registerDevice(h, "cc-model", { device_model: "OTHER", current_version: "1.0.0" });
    await registerDevice(h, "cc-hw", { hardware_version: "3.0" });
    await registerDevice(h, "cc-old", { current_version: "1.2.0" });
    const r = await api(h, "POST", "/api/v1/firmware/fw_v1.2.0/compatibility-check", { ...asAdmin(h), body: { device_ids: ["cc-ok", "cc-model", "cc-hw", "cc-old", "never-seen"] } });
    expect(r.status).toBe(200);
    const by = Object.fromEntries(r.body.results.map((x: any) => [x.device_id, x]));
    expect(by["cc-ok"].compatible).toBe(true);
    expect(by["cc-model"].reasons.map((x: any) => x.code)).toEqual(["MODEL_MISMATCH"]);
    expect(by["cc-hw"].reasons.map((x: any) => x.code)).toEqual(["HARDWARE_OUT_OF_RANGE"]);
    expect(by["cc-old"].reasons.map((x: any) => x.code)).toEqual(["VERSION_NOT_NEWER"]);
    expect(by["never-seen"]).toMatchObject({ known: false, compatible: true });
    expect(by["never-seen"].warnings.length).toBe(1);
    expect(r.body.compatible_count).toBe(2);
    // chip and secure_version floors against the ESP image
    await registerDevice(h, "cc-chip", { device_model: "ESP32-S3-BOARD", chip_id: 0, current_version: "1.0.0" });
    const esp = (await api(h, "GET", "/api/v1/firmware?device_model=ESP32-S3-BOARD", asAdmin(h))).body.firmware[0];
    await api(h, "GET", "/api/v1/devices/cc-chip/available-updates?secure_version=5", { apiKey: await registerDevice(h, "cc-chip", { device_model: "ESP32-S3-BOARD", chip_id: 0, current_version: "1.0.0" }) });
    const chip = await api(h, "POST", `/api/v1/firmware/${esp.firmware_id}/compatibility-check`, { ...asAdmin(h), body: { device_ids: ["cc-chip"] } });
    expect(chip.body.results[0].reasons.map((x: any) => x.code).sort()).toEqual(["CHIP_MISMATCH", "SECURE_VERSION_TOO_LOW"]);
    expect((await api(h, "POST", "/api/v1/firmware/fw_nope/compatibility-check", { ...asAdmin(h), body: { device_ids: ["x"] } })).status).toBe(404);
    expect((await api(h, "POST", "/api/v1/firmware/fw_v1.2.0/compatibility-check", { ...asAdmin(h), body: { device_ids: [] } })).status).toBe(400);
  });
});
