// The server never produces a manifest the device refuses: manifests with every field at the limit the server accepts,
// built and signed by the real server, pass the device's checks; one past each limit the server answers 400.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TrustedKey } from "../device/core/config";
import { verifyKeyList } from "../device/core/release-keys";
import { checkApplicable, checkManifestShape, MAX_ENVELOPE_BYTES, parseEnvelope, verifyReleaseSignature, verifySignature, type DeviceFacts } from "../device/core/trust";
import { UpdateError } from "../device/core/update-error";
import {
  availableUpdatesPath, CHIP_ID_MAX, deviceHealthPath, HEALTH_ENTRIES_MAX, HEALTH_NAME_MAX, HEALTH_REPORT_MAX_BYTES, COMMAND_NAME_MAX, COMMANDS_MAX_COUNT, DEVICE_ID_MAX, DEVICE_MODEL_MAX, deviceRollbackPath, deviceUpdatePath,
  DOWNLOAD_URL_MAX, ENVELOPE_MAX_BYTES, ERROR_CODE_MAX, ERROR_MESSAGE_MAX, FIRMWARE_ID_MAX, HARDWARE_VERSION_MAX, IMAGE_SIZE_MAX, KEY_ID_MAX,
  KEY_LIST_KEYS_MAX, KEY_LIST_MAX_BYTES, KEY_LIST_VERSION_MAX, PUBLIC_URL_MAX, ROUTES, SECURE_VERSION_MAX, SIGNATURE_ALG_MAX, SIGNATURE_MAX, SIGNATURES_MAX, TIMESTAMP_MAX,
  UPDATE_ID_MAX, updateStatusPath, VERSION_MAX, type SignedUpdateEnvelope,
} from "../device/protocol";
import { generateReleaseKey, releaseStatement, signKeyList, signRelease } from "../release/signing";
import { createHash, generateKeyPairSync } from "node:crypto";
import { p256PublicPoint } from "../server-stub/signing/p256";
import { buildAppImage } from "../esp-image/app-image";
import { minorChange } from "../esp-image/minor-change";
import { api, asAdmin, firmwareForm, registerDevice, startHarness, type Harness } from "./server/harness";

const PUBLIC_URL = "http://127.0.0.1:9/" + "p".repeat(PUBLIC_URL_MAX - "http://127.0.0.1:9/".length);
// A CDN in front (cdn_config): download_url starts with its base URL, fallback_url with its fallback, both at the limit.
const CDN_URL = "https://cdn.example/" + "c".repeat(PUBLIC_URL_MAX - "https://cdn.example/".length);
const CDN_FALLBACK = "https://backup.example/" + "b".repeat(PUBLIC_URL_MAX - "https://backup.example/".length);
const VERSION = "2.0.0-rc+" + "b".repeat(VERSION_MAX - "2.0.0-rc+".length); // the '+' is %-encoded in download_url
const MODEL = "Model-" + "x".repeat(DEVICE_MODEL_MAX - "Model-".length);
const MIN_HW = "1." + "0".repeat(HARDWARE_VERSION_MAX - 2);
const MAX_HW = "9-" + "z".repeat(HARDWARE_VERSION_MAX - 2);
const DEVICE_ID = "dev:" + "x".repeat(DEVICE_ID_MAX - 4);
const commandNames = (count: number, length: number, tag: string) =>
  Array.from({ length: count }, (_, i) => `${tag}${i}_`.padEnd(length, "c"));
const PRE = commandNames(COMMANDS_MAX_COUNT, COMMAND_NAME_MAX, "pre");
const POST = commandNames(COMMANDS_MAX_COUNT, COMMAND_NAME_MAX, "post");

/** A release key with an id at KEY_ID_MAX: every upload here carries its signature, so manifests carry both fields. */
const RELEASE_KEY = { ...generateReleaseKey(new Uint8Array(32).fill(5)), key_id: "r".repeat(KEY_ID_MAX) };

const espImage = (secureVersion: number, seed: number, version = VERSION) =>
  buildAppImage({ version, secureVersion, chipId: CHIP_ID_MAX, size: 8192, seed });
// The device runs BASE; the firmware at the limits is its minor change, so the manifest carries a delta too.
const BASE = espImage(SECURE_VERSION_MAX, 2, "1.0.0");
const BASE_SHA = createHash("sha256").update(BASE).digest("hex");

function deviceError(f: () => void): string | null {
  try {
    f();
    return null;
  } catch (e) {
    if (e instanceof UpdateError) return e.code;
    throw e;
  }
}

describe("protocol limits: what the server accepts, the device accepts", () => {
  let h: Harness;
  let apiKey: string;
  let body: string;
  let keys: TrustedKey[];
  let firmwareId: string;

  beforeAll(async () => {
    h = await startHarness({ publicUrl: PUBLIC_URL, cdn: { enabled: true, base_url: CDN_URL, fallback_url: CDN_FALLBACK, cache_control: null }, releaseKeys: [{ key_id: RELEASE_KEY.key_id, public_key: RELEASE_KEY.public_key }] });
    const upload = async (model: string, image: Uint8Array, version = VERSION) => {
      const form = firmwareForm({ version, device_model: model, min_hardware_version: MIN_HW, max_hardware_version: MAX_HW }, image);
      form.append("release_signature", JSON.stringify(signRelease(releaseStatement(image, { model }), RELEASE_KEY)));
      const r = await api(h, "POST", ROUTES.firmwareList, { ...asAdmin(h), body: form });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.firmware_id as string;
    };
    await upload("First model", espImage(SECURE_VERSION_MAX, 1)); // takes "fw_v{version}", so the next id is model-qualified
    await upload(MODEL, BASE, "1.0.0");
    firmwareId = await upload(MODEL, minorChange(BASE, VERSION));
    apiKey = await registerDevice(h, DEVICE_ID, { device_model: MODEL, hardware_version: "5.0", current_version: "1.0.0" });
    const assigned = await api(h, "POST", deviceUpdatePath(DEVICE_ID), {
      ...asAdmin(h), body: { firmware_id: firmwareId, priority: "emergency", pre_update_commands: PRE, post_update_commands: POST },
    });
    expect(assigned.status, JSON.stringify(assigned.body)).toBe(201);
    const res = await fetch(h.server.url + availableUpdatesPath(DEVICE_ID, { current_version: "1.0.0", device_model: MODEL, hardware_version: "5.0", running_sha256: BASE_SHA }), { headers: { "x-api-key": apiKey } });
    body = await res.text();
    keys = (await api(h, "GET", ROUTES.keys, asAdmin(h))).body.keys.map((k: { key_id: string; public_key: string }) => ({ keyId: k.key_id, publicKey: k.public_key }));
  });
  afterAll(() => h?.close());

  it("builds a manifest with every field at its limit", () => {
    const m = (JSON.parse(body) as SignedUpdateEnvelope).manifest;
    expect(m.device_id.length).toBe(DEVICE_ID_MAX);
    expect(m.firmware_id.length).toBe(FIRMWARE_ID_MAX);
    expect(m.version.length).toBe(VERSION_MAX);
    expect(m.device_model!.length).toBe(DEVICE_MODEL_MAX);
    expect([m.min_hardware_version!.length, m.max_hardware_version!.length]).toEqual([HARDWARE_VERSION_MAX, HARDWARE_VERSION_MAX]);
    expect([m.chip_id, m.secure_version]).toEqual([CHIP_ID_MAX, SECURE_VERSION_MAX]);
    expect([m.pre_update_commands, m.post_update_commands]).toEqual([PRE, POST]);
    expect(m.download_url.startsWith(CDN_URL)).toBe(true);
    expect(m.fallback_url!.startsWith(CDN_FALLBACK)).toBe(true);
    expect(Math.max(m.download_url.length, m.fallback_url!.length)).toBeLessThanOrEqual(DOWNLOAD_URL_MAX);
    expect(m.delta).toMatchObject({ base_sha256: BASE_SHA, patch_url: expect.stringMatching(new RegExp(`^${PUBLIC_URL}/api/v1/firmware/[^/]{${FIRMWARE_ID_MAX},}/patches/${BASE_SHA}$`)) });
    expect(m.delta!.patch_url.length).toBeLessThanOrEqual(DOWNLOAD_URL_MAX);
  });

  it("and the device parses, verifies and accepts it", () => {
    const env = parseEnvelope(body)!;
    expect(env).not.toBeNull();
    verifySignature(env, keys);
    checkManifestShape(env.manifest as unknown as Record<string, unknown>);
    expect(env.manifest.release_key_id).toBe(RELEASE_KEY.key_id);
    verifyReleaseSignature(env.manifest, [{ keyId: RELEASE_KEY.key_id, publicKey: RELEASE_KEY.public_key }]);
    const facts: DeviceFacts = {
      deviceId: DEVICE_ID, deviceModel: MODEL, hardwareVersion: "5.0", chipId: CHIP_ID_MAX, runningVersion: "1.0.0", secureFloor: 0,
      applied: { newestIssuedMs: 0, updateIds: [] },
      slotSize: 0x1e0000, nowMs: h.clock.now(), clockSkewMs: 0, clockTrusted: true, knownCommands: [...PRE, ...POST],
    };
    checkApplicable(env.manifest, facts);
  });

  it("the worst envelope the server can produce fits the device's envelope bound", () => {
    const env = JSON.parse(body) as SignedUpdateEnvelope;
    // Free text is only device_model; \u0001 is escaped to 6 characters, more than any other character costs.
    const worst = {
      ...env,
      key_id: "k".repeat(KEY_ID_MAX),
      key_list_version: KEY_LIST_VERSION_MAX,
      // As many signatures as the device takes, every field at its bound (the server sends one per algorithm).
      signatures: Array.from({ length: SIGNATURES_MAX }, () => ({ key_id: "k".repeat(KEY_ID_MAX), alg: "a".repeat(SIGNATURE_ALG_MAX), sig: "s".repeat(SIGNATURE_MAX) })),
      manifest: {
        ...env.manifest,
        release_signature: "s".repeat(SIGNATURE_MAX), release_key_id: "r".repeat(KEY_ID_MAX),
        update_id: "u".repeat(UPDATE_ID_MAX), size: IMAGE_SIZE_MAX, device_model: "\u0001".repeat(DEVICE_MODEL_MAX),
        download_url: env.manifest.download_url.padEnd(DOWNLOAD_URL_MAX, "d"), fallback_url: env.manifest.fallback_url!.padEnd(DOWNLOAD_URL_MAX, "d"),
        delta: { ...env.manifest.delta!, patch_url: env.manifest.delta!.patch_url.padEnd(DOWNLOAD_URL_MAX, "p"), patch_size: IMAGE_SIZE_MAX },
        issued_at: env.manifest.issued_at.padEnd(TIMESTAMP_MAX, "Z"), expires_at: env.manifest.expires_at.padEnd(TIMESTAMP_MAX, "Z"),
      },
    };
    const worstBytes = Buffer.byteLength(JSON.stringify(worst));
    console.log(`envelope: served ${Buffer.byteLength(body)} bytes, worst case ${worstBytes} bytes, device bound ${ENVELOPE_MAX_BYTES}`);
    expect(MAX_ENVELOPE_BYTES).toBe(ENVELOPE_MAX_BYTES);
    expect(worstBytes).toBeLessThanOrEqual(ENVELOPE_MAX_BYTES);
  });

  it("the largest key list fits the device's key-list bound, and the device accepts it", () => {
    const keys = Array.from({ length: KEY_LIST_KEYS_MAX }, (_, i) => ({ key_id: `${i}`.padEnd(KEY_ID_MAX, "k"), public_key: RELEASE_KEY.public_key }));
    // Server keys may be P-256 points (65 bytes) with their alg: the longer entries.
    const point = Buffer.from(p256PublicPoint(generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey)).toString("base64");
    const serverKeys = keys.map((k) => ({ ...k, public_key: point, alg: "ecdsa-p256-sha256" }));
    const list = { key_list_version: KEY_LIST_VERSION_MAX, issued_at: "2026-11-30T12:00:00.000Z".padEnd(TIMESTAMP_MAX, "Z"), release_keys: keys, server_keys: serverKeys };
    const worst = JSON.stringify(signKeyList(list, RELEASE_KEY));
    console.log(`key list: worst case ${Buffer.byteLength(worst)} bytes, device bound ${KEY_LIST_MAX_BYTES}`);
    expect(Buffer.byteLength(worst)).toBeLessThanOrEqual(KEY_LIST_MAX_BYTES);
    const current = { version: 0, releaseKeys: [{ keyId: RELEASE_KEY.key_id, publicKey: RELEASE_KEY.public_key }], serverKeys: [] };
    expect(verifyKeyList(worst, current).version).toBe(KEY_LIST_VERSION_MAX);
    expect(() => verifyKeyList(worst.padEnd(KEY_LIST_MAX_BYTES + 1), current)).toThrow(/too large/);
    const tooMany = { ...list, release_keys: [...keys, keys[0]!] };
    expect(() => verifyKeyList(JSON.stringify(signKeyList(tooMany, RELEASE_KEY)), current)).toThrow(/more than/);
  });

  it("the device refuses one past each limit", () => {
    const m = (JSON.parse(body) as SignedUpdateEnvelope).manifest as unknown as Record<string, unknown>;
    const past: Array<[string, unknown]> = [
      ["update_id", "u".repeat(UPDATE_ID_MAX + 1)], ["device_id", DEVICE_ID + "x"], ["firmware_id", "f".repeat(FIRMWARE_ID_MAX + 1)],
      ["version", VERSION + "b"], ["device_model", MODEL + "x"], ["min_hardware_version", MIN_HW + "0"], ["max_hardware_version", MAX_HW + "z"],
      ["download_url", "http://h/".padEnd(DOWNLOAD_URL_MAX + 1, "d")], ["fallback_url", "http://h/".padEnd(DOWNLOAD_URL_MAX + 1, "d")], ["chip_id", CHIP_ID_MAX + 1], ["secure_version", SECURE_VERSION_MAX + 1],
      ["size", IMAGE_SIZE_MAX + 1], ["issued_at", String(m.issued_at).padEnd(TIMESTAMP_MAX + 1, "Z")],
      ["pre_update_commands", [...PRE, "one_more"]], ["post_update_commands", [POST[0] + "c"]],
      ["release_signature", "s".repeat(SIGNATURE_MAX + 1)], ["release_key_id", "r".repeat(KEY_ID_MAX + 1)],
    ];
    const delta = m.delta as Record<string, unknown>;
    past.push(
      ["delta", { ...delta, patch_url: "http://h/".padEnd(DOWNLOAD_URL_MAX + 1, "p") }], ["delta", { ...delta, patch_size: IMAGE_SIZE_MAX + 1 }],
      ["delta", { ...delta, patch_size: 0 }], ["delta", { ...delta, base_sha256: BASE_SHA.toUpperCase() }], ["delta", { ...delta, extra: 1 }], ["delta", "yes"],
    );
    for (const [field, value] of past) {
      expect([field, deviceError(() => checkManifestShape({ ...m, [field]: value }))]).toEqual([field, "MANIFEST_INVALID"]);
    }
    expect(deviceError(() => parseEnvelope(body.padEnd(ENVELOPE_MAX_BYTES + 1)))).toBe("MANIFEST_INVALID");
  });

  it("the server answers 400 one past each limit", async () => {
    const tooMany = commandNames(COMMANDS_MAX_COUNT + 1, 8, "c");
    const tooLong = [PRE[0] + "c"];
    const cases: Array<[string, string, string, unknown]> = [
      ["device id", "POST", ROUTES.devices, { device_id: DEVICE_ID + "x" }],
      ["registered model", "POST", ROUTES.devices, { device_id: "d2", device_model: MODEL + "x" }],
      ["registered hardware", "POST", ROUTES.devices, { device_id: "d2", hardware_version: MIN_HW + "0" }],
      ["registered version", "POST", ROUTES.devices, { device_id: "d2", current_version: VERSION + "b" }],
      ["firmware id", "POST", deviceUpdatePath(DEVICE_ID), { firmware_id: "f".repeat(FIRMWARE_ID_MAX + 1) }],
      ["pre-update count", "POST", deviceUpdatePath(DEVICE_ID), { firmware_id: firmwareId, pre_update_commands: tooMany }],
      ["post-update name", "POST", deviceUpdatePath(DEVICE_ID), { firmware_id: firmwareId, post_update_commands: tooLong }],
      ["empty command", "POST", deviceUpdatePath(DEVICE_ID), { firmware_id: firmwareId, post_update_commands: [""] }],
      ["command charset", "POST", deviceUpdatePath(DEVICE_ID), { firmware_id: firmwareId, post_update_commands: ["rm -rf"] }],
      ["campaign pre-update count", "POST", ROUTES.campaigns, { name: "c", firmware_id: firmwareId, pre_update_commands: tooMany }],
      ["campaign post-update name", "POST", ROUTES.campaigns, { name: "c", firmware_id: firmwareId, post_update_commands: tooLong }],
      ["rollback version", "POST", deviceRollbackPath(DEVICE_ID), { target_version: VERSION + "b" }],
    ];
    for (const [label, method, path, reqBody] of cases) {
      const r = await api(h, method, path, { ...asAdmin(h), body: reqBody });
      expect([label, r.status, typeof r.body?.error?.code]).toEqual([label, 400, "string"]);
    }
    const asDevice = async (path: string, reqBody?: unknown) => (await api(h, reqBody === undefined ? "GET" : "POST", path, { apiKey, body: reqBody })).status;
    const updateId = (JSON.parse(body) as SignedUpdateEnvelope).manifest.update_id;
    expect(await asDevice(availableUpdatesPath(DEVICE_ID, { current_version: VERSION + "b" }))).toBe(400);
    expect(await asDevice(availableUpdatesPath(DEVICE_ID, { device_model: MODEL + "x" }))).toBe(400);
    expect(await asDevice(availableUpdatesPath(DEVICE_ID, { hardware_version: MIN_HW + "0" }))).toBe(400);
    expect(await asDevice(availableUpdatesPath(DEVICE_ID, { chip_id: CHIP_ID_MAX + 1 }))).toBe(400);
    expect(await asDevice(availableUpdatesPath(DEVICE_ID, { secure_version: SECURE_VERSION_MAX + 1 }))).toBe(400);
    expect(await asDevice(availableUpdatesPath(DEVICE_ID, { running_sha256: BASE_SHA + "0" }))).toBe(400);
    for (const report of [
      { status: "downloading", error_message: "e".repeat(ERROR_MESSAGE_MAX + 1) },
      { status: "downloading", error_code: "E".repeat(ERROR_CODE_MAX + 1) },
      { status: "completed", to_version: VERSION + "b" },
      { status: "downloading", timestamp: "t".repeat(TIMESTAMP_MAX + 1) },
      { status: "deferred", reason: "r".repeat(ERROR_MESSAGE_MAX + 1) },
      { status: "deferred", deferred_until: "t".repeat(TIMESTAMP_MAX + 1) },
    ]) expect([report, await asDevice(updateStatusPath(updateId), report)]).toEqual([report, 400]);
  });

  it("health reports: every field at its limit is stored and fits the byte bound; one past each limit is refused", async () => {
    const names = (tag: string, count = HEALTH_ENTRIES_MAX) => Array.from({ length: count }, (_, i) => `${tag}${i}_`.padEnd(HEALTH_NAME_MAX, "n"));
    const worst = {
      update_id: (JSON.parse(body) as SignedUpdateEnvelope).manifest.update_id.padEnd(UPDATE_ID_MAX, "u"), version: VERSION,
      reset_reason: "power_glitch", uptime_s: 0xffffffff, free_heap: 0xffffffff, min_free_heap: 0xffffffff, crash_reboots: 0xffffffff,
      checks: Object.fromEntries(names("c").map((n) => [n, false])),
      metrics: Object.fromEntries(names("m").map((n) => [n, -1.2345678901234567e-300])),
      sequence: Number.MAX_SAFE_INTEGER, timestamp: "t".repeat(TIMESTAMP_MAX),
    };
    const bytes = new TextEncoder().encode(JSON.stringify(worst)).length;
    console.log(`health report: worst case ${bytes} bytes, server bound ${HEALTH_REPORT_MAX_BYTES}`);
    expect(bytes).toBeLessThanOrEqual(HEALTH_REPORT_MAX_BYTES);
    const post = async (b: unknown) => (await api(h, "POST", deviceHealthPath(DEVICE_ID), { apiKey, body: b })).status;
    const real = { ...worst, update_id: (JSON.parse(body) as SignedUpdateEnvelope).manifest.update_id };
    expect(await post(real)).toBe(200);
    for (const [label, past] of [
      ["check count", { checks: Object.fromEntries(names("c", HEALTH_ENTRIES_MAX + 1).map((n) => [n, true])) }],
      ["metric name", { metrics: { ["m".repeat(HEALTH_NAME_MAX + 1)]: 1 } }],
      ["metric charset", { metrics: { "a b": 1 } }],
      ["metric value", { metrics: { m: "many" } }],
      ["reset reason", { reset_reason: "meltdown" }],
      ["version", { version: VERSION + "b" }],
      ["update id", { update_id: "u".repeat(UPDATE_ID_MAX + 1) }],
      ["crash count", { crash_reboots: -1 }],
    ] as const) expect([label, await post({ ...real, ...past })]).toEqual([label, 400]);
    expect(await post({ ...real, timestamp: null, metrics: {}, checks: {}, pad: "x".repeat(HEALTH_REPORT_MAX_BYTES) })).toBe(413);
  });

  it("refuses firmware the device would refuse: metadata past its limits, a secure_version past the device's", async () => {
    const upload = (meta: Record<string, unknown>, image: Uint8Array) => api(h, "POST", ROUTES.firmwareList, { ...asAdmin(h), body: firmwareForm({ device_model: "m", ...meta }, image) });
    const raw = new Uint8Array(100).fill(1);
    for (const meta of [
      { version: VERSION + "b" }, { version: "not-a-version" }, { version: "2.0.0", device_model: MODEL + "x" },
      { version: "2.0.0", min_hardware_version: MIN_HW + "0" }, { version: "2.0.0", max_hardware_version: " 2.0" },
    ]) {
      const r = await upload(meta, raw);
      expect([meta, r.status, r.body.error.code]).toEqual([meta, 400, "INVALID_METADATA"]);
    }
    const r = await upload({ version: VERSION }, espImage(SECURE_VERSION_MAX + 1, 3));
    expect([r.status, r.body.error.code]).toEqual([400, "IMAGE_INVALID"]);
  });

  it("refuses to start with a public URL that would make download_url too long for devices", async () => {
    await expect(startHarness({ publicUrl: PUBLIC_URL + "p" })).rejects.toThrow(/public URL/);
    await expect(startHarness({ publicUrl: "http://host/a b" })).rejects.toThrow(/public URL/);
    const cdn = (base_url: string, fallback_url: string | null) => ({ cdn: { enabled: true, base_url, fallback_url, cache_control: null } });
    await expect(startHarness(cdn(CDN_URL + "c", null))).rejects.toThrow(/CDN base URL/);
    await expect(startHarness(cdn(CDN_URL, CDN_FALLBACK + "b"))).rejects.toThrow(/CDN fallback URL/);
  });
});
