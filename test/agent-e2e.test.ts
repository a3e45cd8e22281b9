// The device agent end to end: the real server stub over real HTTP and MQTT, simulated devices running the
// real agent on Node and on the real XS engine, and the flash inspected afterwards. A scenario that passes
// on one runtime and fails on the other is a bug in the agent. The world speaks TLS (HTTPS and MQTTS, the proxy
// included), with its private CA pinned in every device.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRuntime } from "../host-sim/device/sim-device";
import type { XsAgent } from "../host-sim/xs/xs-agent";
import type { World } from "./helpers/e2e";
import { createDeviceFlash } from "../host-sim/device-flash";
import { assign, BIG_SLOTS_CSV, device, image, inspect, startWorld, updateRecord, upload } from "./helpers/e2e";
import { api, asAdmin } from "./server/harness";

const RUNTIMES: AgentRuntime[] = ["node", "xs"];


describe.each(RUNTIMES)("agent on %s", (runtime) => {
  let w: World;
  let v110: string;
  beforeAll(async () => {
    // Full-image scenarios: with deltas on, 1.0.0 → 1.1.0 would come as a patch (test/delta-e2e.test.ts covers those).
    w = await startWorld(runtime, { deltas: false });
    await upload(w, "1.0.0");
    v110 = await upload(w, "1.1.0");
  });
  afterAll(async () => w?.close());

  it("happy path: download, verify, switch, self-test, confirm, report completed", async () => {
    const { dev } = await device(w, `${runtime}-happy`);
    const { update_id } = await assign(w, dev.options.id, v110);
    const r = await dev.runCycle();
    expect(r).toMatchObject({ bricked: false, slot: "ota_1", version: "1.1.0", lastBoot: "confirmed" });
    expect(inspect(dev.flash)).toMatchObject({ bootSlot: "ota_1", bootState: "VALID", otadata: ["seq1 VALID", "seq2 VALID"], versions: { ota_0: "1.0.0", ota_1: "1.1.0" } });
    const u = await updateRecord(w, update_id);
    expect(u).toMatchObject({ status: "completed", from_version: "1.0.0", to_version: "1.1.0" });
    expect(dev.http.downloaded).toBe(image("1.1.0").length);
    expect([dev.options.serverUrl, u.download_url ?? w.proxy.url, w.h.server.url]).toEqual([expect.stringMatching(/^https:/), expect.stringMatching(/^https:/), expect.stringMatching(/^https:/)]);
    expect(dev.options.tlsCas).toEqual([w.ca]);
    const d = (await api(w.h, "GET", `/api/v1/devices/${dev.options.id}`, asAdmin(w.h))).body;
    expect(d.current_version ?? d.reported_version ?? d.firmware_version).toBe("1.1.0");
  });

  it("bad signature: a device that trusts another key refuses before erasing anything", async () => {
    const other = { publicKey: Buffer.alloc(32, 7).toString("base64") };
    const slotOps: number[] = [];
    const flash = createDeviceFlash({ onOp: (op) => op.offset >= 0x1f0000 && op.offset < 0x3d0000 && slotOps.push(op.offset) });
    const { dev } = await device(w, `${runtime}-badsig`, { keys: [other], flash });
    const { update_id } = await assign(w, dev.options.id, v110);
    const r = await dev.runCycle();
    expect(r.outcome).toMatchObject({ result: "failed", code: "SIGNATURE_INVALID" });
    expect(inspect(dev.flash)).toMatchObject({ bootSlot: "ota_0", versions: { ota_0: "1.0.0", ota_1: null } });
    expect(slotOps).toEqual([]); // ota_1 was never erased or written
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "failed" });
  });

  it("a manifest replayed to another device is refused", async () => {
    const { dev: a, apiKey: keyA } = await device(w, `${runtime}-replay-a`);
    await assign(w, a.options.id, v110);
    const captured = (await api(w.h, "GET", `/api/v1/devices/${a.options.id}/available-updates`, { apiKey: keyA })).body;
    const { dev: b } = await device(w, `${runtime}-replay-b`);
    w.proxy.availableUpdates = (id) => (id === b.options.id ? JSON.stringify(captured) : null);
    try {
      const r = await b.runCycle();
      expect(r.outcome).toMatchObject({ result: "failed", code: "MANIFEST_INVALID" });
      expect(inspect(b.flash)).toMatchObject({ bootSlot: "ota_0", versions: { ota_1: null } });
    } finally {
      w.proxy.availableUpdates = null;
    }
  });

  it("an expired manifest is refused", async () => {
    const { dev, apiKey } = await device(w, `${runtime}-expired`);
    await assign(w, dev.options.id, v110);
    const now = w.h.clock.now();
    w.h.clock.set(now - 3 * 24 * 3600_000); // the server signs as of three days ago
    const old = (await api(w.h, "GET", `/api/v1/devices/${dev.options.id}/available-updates`, { apiKey })).body;
    w.h.clock.set(now);
    w.proxy.availableUpdates = (id) => (id === dev.options.id ? JSON.stringify(old) : null);
    try {
      const r = await dev.runCycle();
      expect(r.outcome).toMatchObject({ result: "failed", code: "MANIFEST_EXPIRED" });
      expect(inspect(dev.flash).versions.ota_1).toBeNull();
    } finally {
      w.proxy.availableUpdates = null;
    }
  });

  it("tampered firmware (a flipped byte in the stored blob) → CHECKSUM_MISMATCH, old image still running", async () => {
    const bytes = image("1.1.1", "healthy", 80 * 1024);
    const fw = await upload(w, "1.1.1", { bytes });
    const blob = w.h.server.ctx.blobs.pathFor(createHash("sha256").update(bytes).digest("hex"));
    const original = readFileSync(blob);
    const tampered = Buffer.from(original);
    tampered[50_000] ^= 0x01;
    writeFileSync(blob, tampered);
    try {
      const { dev } = await device(w, `${runtime}-tampered`);
      const { update_id } = await assign(w, dev.options.id, fw);
      const r = await dev.runCycle();
      expect(r.outcome).toMatchObject({ result: "failed", code: "CHECKSUM_MISMATCH" });
      expect(inspect(dev.flash)).toMatchObject({ bootSlot: "ota_0", otadata: ["seq1 VALID", "blank"] });
      expect(await updateRecord(w, update_id)).toMatchObject({ status: "failed" });
    } finally {
      writeFileSync(blob, original);
    }
  });

  // The server checks compatibility too, so each case makes the server believe something the device knows
  // to be false (a misregistered board, a stale version record) or offers what cannot fit.
  it.each([
    ["wrong model", async () => upload(w, "1.2.0", { model: "OTHER-BOARD" }), { device_model: "OTHER-BOARD" }, "INCOMPATIBLE_VERSION"],
    ["downgrade", async () => upload(w, "0.9.0"), { current_version: "0.5.0" }, "DOWNGRADE_REJECTED"],
    ["oversize", async () => upload(w, "1.3.0", { size: 0x1e0000 + 0x1000 }), {}, "INSUFFICIENT_SPACE"],
  ])("%s is refused before the first byte is erased", async (name, fw, register, code) => {
    const { dev } = await device(w, `${runtime}-${name.replace(/ /g, "-")}`, { register });
    await assign(w, dev.options.id, await fw());
    const r = await dev.runCycle();
    expect(r.outcome).toMatchObject({ result: "failed", code });
    expect(inspect(dev.flash)).toMatchObject({ bootSlot: "ota_0", versions: { ota_1: null } });
    expect(dev.http.downloaded).toBe(0);
  });

  it.each([
    ["fail-self-test", "SELF_TEST_FAILED"],
    ["crash", "SELF_TEST_FAILED"],
    ["hang", "TIMEOUT"],
  ] as const)("new firmware that does %s is rolled back and reported", async (behaviour, code) => {
    const fw = await upload(w, `2.0.0-${behaviour}`, { behaviour });
    const { dev } = await device(w, `${runtime}-${behaviour}`);
    const { update_id } = await assign(w, dev.options.id, fw);
    const r = await dev.runCycle();
    expect(r).toMatchObject({ bricked: false, slot: "ota_0", version: "1.0.0", lastBoot: "rolled-back-reported" });
    const flash = inspect(dev.flash);
    expect(flash.bootSlot).toBe("ota_0");
    expect(flash.otadata[1]).toMatch(behaviour === "crash" ? /seq2 ABORTED/ : /seq2 INVALID/);
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "rolled_back", error: { code } });
  });

  it("network cuts at seeded random offsets: resumed with Range, total bytes ≤ 1.1 × image", async () => {
    const bytes = image("1.4.0", "healthy", 600 * 1024);
    const fw = await upload(w, "1.4.0", { bytes });
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const dropAt = Array.from({ length: 6 }, () => Math.floor(rand() * bytes.length));
    const { dev } = await device(w, `${runtime}-netcut`, { extra: { network: { dropAt } } });
    await assign(w, dev.options.id, fw);
    const r = await dev.runCycle();
    expect(r).toMatchObject({ version: "1.4.0", lastBoot: "confirmed" });
    expect(dev.http.downloaded).toBeLessThanOrEqual(1.1 * bytes.length);
    expect(dev.http.downloaded).toBeGreaterThanOrEqual(bytes.length);
    expect(dev.logs.filter((l) => l.includes("download interrupted")).length).toBeGreaterThanOrEqual(5);
  });

  it("a stalled connection times out and the download resumes", async () => {
    const fw = await upload(w, "1.4.1", { size: 200 * 1024 });
    const { dev } = await device(w, `${runtime}-stall`, { extra: { network: { stallAt: [70_000] } } });
    await assign(w, dev.options.id, fw);
    const r = await dev.runCycle();
    expect(r).toMatchObject({ version: "1.4.1", lastBoot: "confirmed" });
    expect(dev.logs.join("\n"), dev.logs.join("\n")).toMatch(/timed out/);
  });

  it("a server that ignores Range: the agent restarts cleanly from zero", async () => {
    const bytes = image("1.5.0", "healthy", 300 * 1024);
    const fw = await upload(w, "1.5.0", { bytes });
    const { dev } = await device(w, `${runtime}-norange`, { extra: { network: { dropAt: [150_000] } } });
    await assign(w, dev.options.id, fw);
    w.proxy.ignoreRange = true;
    try {
      const r = await dev.runCycle();
      expect(r).toMatchObject({ version: "1.5.0", lastBoot: "confirmed" });
      expect(dev.logs.join("\n")).toMatch(/ignored Range; restarting from zero/);
      expect(dev.http.downloaded).toBe(150_000 + bytes.length);
    } finally {
      w.proxy.ignoreRange = false;
    }
  });

  it("power cut mid-download: resumed after the reboot from the durable offset", async () => {
    const bytes = image("1.6.0", "healthy", 500 * 1024);
    const fw = await upload(w, "1.6.0", { bytes });
    const { dev } = await device(w, `${runtime}-powercut`);
    await assign(w, dev.options.id, fw);
    // 100 flash operations into the update is well inside the image's ~250 sector erases and writes.
    const arm = dev.flash;
    const first = await dev.powerOn();
    expect(first.kind).toBe("running");
    arm.armFaults({ cutAfter: 100 });
    const outcome = await dev.agent!.checkNow().catch((e) => e);
    expect(arm.isPowered).toBe(false);
    expect(outcome).toBeDefined();
    const r = await dev.runCycle();
    expect(r).toMatchObject({ version: "1.6.0", lastBoot: "confirmed" });
    expect(dev.http.downloaded).toBeLessThan(bytes.length + 128 * 1024);
    expect(dev.logs.join("\n")).toMatch(/"phase":"downloading"/);
  });

  it("rollback command: switches to the other slot without a download when it holds the target", async () => {
    const { dev } = await device(w, `${runtime}-rb-switch`);
    await assign(w, dev.options.id, v110);
    expect((await dev.runCycle()).version).toBe("1.1.0");
    const before = dev.http.downloaded;
    const rb = await api(w.h, "POST", `/api/v1/devices/${dev.options.id}/rollback`, { ...asAdmin(w.h), body: { target_version: "1.0.0", reason: "test" } });
    expect(rb.status).toBeLessThan(300);
    const r = await dev.runCycle();
    expect(r).toMatchObject({ slot: "ota_0", version: "1.0.0", lastBoot: "confirmed" });
    expect(dev.http.downloaded).toBe(before);
    expect(inspect(dev.flash)).toMatchObject({ bootSlot: "ota_0", bootState: "VALID", otadata: ["seq3 VALID", "seq2 VALID"] });
    expect(await updateRecord(w, rb.body.update_id)).toMatchObject({ status: "completed" });
  });

  it("rollback command: downloads the target when no slot holds it", async () => {
    const v120 = await upload(w, "1.2.1");
    const { dev } = await device(w, `${runtime}-rb-download`);
    await assign(w, dev.options.id, v110);
    expect((await dev.runCycle()).version).toBe("1.1.0");
    await assign(w, dev.options.id, v120);
    expect((await dev.runCycle()).version).toBe("1.2.1");
    const before = dev.http.downloaded;
    const rb = await api(w.h, "POST", `/api/v1/devices/${dev.options.id}/rollback`, { ...asAdmin(w.h), body: { target_version: "1.0.0", reason: "test" } });
    expect(rb.status).toBeLessThan(300);
    const r = await dev.runCycle();
    expect(r).toMatchObject({ version: "1.0.0", lastBoot: "confirmed" });
    expect(dev.http.downloaded - before).toBe(image("1.0.0").length);
  });

  it.runIf(runtime === "xs")("peak live XS memory of an update does not grow with the image (256 KiB vs 4 MiB)", async () => {
    const peaks: Record<string, number> = {};
    for (const [label, size] of [["256k", 256 * 1024], ["4m", 4 * 1024 * 1024]] as const) {
      const fw = await upload(w, `3.0.${size}`, { size });
      // About 40 samples per update whatever its size, so both maxima come from as many draws.
      const every = Math.max(1, Math.round(size / 4096 / 40));
      const { dev } = await device(w, `xs-mem-${label}`, { partitionsCsv: BIG_SLOTS_CSV, flashSize: 16 << 20, extra: { xsSampleLiveSlotsEvery: every } });
      await dev.powerOn();
      await assign(w, dev.options.id, fw);
      expect(await dev.agent!.checkNow()).toMatchObject({ result: "restarting" });
      const m = (dev.agent as XsAgent).meters;
      peaks[label] = m.peakHeapCount - m.idleHeapCount;
      await dev.powerOff();
    }
    // Live slots above the idle machine: a few thousand for the agent's objects, whatever the image size.
    expect(peaks["256k"]!).toBeGreaterThan(0);
    expect(peaks["4m"]!).toBeLessThanOrEqual(peaks["256k"]! * 1.05);
  }, 120_000);

  it("MQTT notification triggers the update on a running device", async () => {
    expect(w.h.server.mqttUrl).toMatch(/^mqtts:/);
    const { dev } = await device(w, `${runtime}-mqtt`, { extra: { mqttUrl: w.h.server.mqttUrl! } });
    await dev.runForever();
    // A TLS handshake under load can take a while: the hint must not be published before the session is up.
    for (const until = Date.now() + 10_000; !dev.mqttConnected && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // let it subscribe
    const { update_id } = await assign(w, dev.options.id, v110);
    const deadline = Date.now() + 15_000;
    while ((await updateRecord(w, update_id)).status !== "completed" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await dev.stopForever();
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "completed" });
    expect(inspect(dev.flash).versions.ota_1).toBe("1.1.0");
  });
});

