// The REAL device/esp32 adapters (ports.ts and all it assembles: http.ts, ota.ts, hash.ts, clock.ts, restart.ts,
// raw-flash.ts, health.ts, log.ts) run on the XS engine against fakes of the Moddable modules they import
// (host-sim/xs/moddable-fakes), over a real server on loopback and the simulator's flash and esp_ota model.
// Plain HTTP (the TLS socket is not simulated) and no MQTT (the agent polls): the other runtimes cover those.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostNetwork } from "../host-sim/xs/esp32-network-host";
import type { World } from "./helpers/e2e";
import { assign, device, image, inspect, startWorld, TEST_AGENT, updateRecord, upload } from "./helpers/e2e";

describe("agent over the ESP32 adapters on XS", () => {
  let w: World;
  let v110: string;
  beforeAll(async () => {
    w = await startWorld("xs-esp32", { tls: false, deltas: false });
    await upload(w, "1.0.0");
    v110 = await upload(w, "1.1.0");
  });
  afterAll(async () => w?.close());

  it("full update: download through http.ts, SHA-256 through crypt, esp_ota through espota, confirmed", async () => {
    const network = new HostNetwork();
    const { dev } = await device(w, "esp32-happy", { extra: { esp32Network: network } });
    const { update_id } = await assign(w, dev.options.id, v110);
    const r = await dev.runCycle();
    expect(r).toMatchObject({ bricked: false, slot: "ota_1", version: "1.1.0", lastBoot: "confirmed" });
    expect(inspect(dev.flash)).toMatchObject({ bootSlot: "ota_1", bootState: "VALID", otadata: ["seq1 VALID", "seq2 VALID"], versions: { ota_0: "1.0.0", ota_1: "1.1.0" } });
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "completed", from_version: "1.0.0", to_version: "1.1.0" });
    expect(network.received).toBeGreaterThan(image("1.1.0").length);
    expect(dev.logs.join("\n")).toMatch(/\[ota\] info/); // the adapters' own log line format (log.ts over trace)
  });

  it("power cut mid-download: resumed through esp_ota_resume from the durable offset", async () => {
    const bytes = image("1.6.0", "healthy", 400 * 1024);
    const fw = await upload(w, "1.6.0", { bytes });
    const network = new HostNetwork();
    const { dev } = await device(w, "esp32-powercut", { extra: { esp32Network: network } });
    await assign(w, dev.options.id, fw);
    expect((await dev.powerOn()).kind).toBe("running");
    dev.flash.armFaults({ cutAfter: 80 });
    await dev.agent!.checkNow().catch((e: unknown) => e);
    expect(dev.flash.isPowered).toBe(false);
    const before = network.received;
    expect(before).toBeGreaterThan(64 * 1024); // the cut came well into the image
    const r = await dev.runCycle();
    expect(r).toMatchObject({ version: "1.6.0", lastBoot: "confirmed" });
    // After the reboot the download went on from where it was, not from zero.
    expect(network.received - before).toBeLessThan(bytes.length - 48 * 1024);
    expect(dev.logs.join("\n")).toMatch(/resum/i);
  });

  it("rollback: a self-test that fails rolls the board back and the report says so", async () => {
    const fw = await upload(w, "2.0.0-fail", { behaviour: "fail-self-test" });
    const { dev } = await device(w, "esp32-rollback");
    const { update_id } = await assign(w, dev.options.id, fw);
    const r = await dev.runCycle();
    expect(r).toMatchObject({ bricked: false, slot: "ota_0", version: "1.0.0", lastBoot: "rolled-back-reported" });
    expect(inspect(dev.flash).otadata[1]).toMatch(/seq2 INVALID/);
    // The report says how the image ended: restarted by the agent after the failed self-test, no core dump.
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "rolled_back", error: { code: "SELF_TEST_FAILED" }, reset_reason: "software", coredump: null });
  });

  it("rollback after a crash: the report carries the panic reset and the core dump summary (espota → health.ts)", async () => {
    const fw = await upload(w, "2.0.0-crash", { behaviour: "crash" });
    const { dev } = await device(w, "esp32-crash");
    const { update_id } = await assign(w, dev.options.id, fw);
    const r = await dev.runCycle();
    expect(r).toMatchObject({ slot: "ota_0", version: "1.0.0", lastBoot: "rolled-back-reported" });
    const u = await updateRecord(w, update_id);
    expect(u).toMatchObject({ status: "rolled_back", reset_reason: "panic", coredump: { task: "main", cause: 28, backtrace_corrupted: false } });
    expect(u.coredump.backtrace[0]).toBe(u.coredump.pc);
    expect(u.coredump.pc).toBeGreaterThanOrEqual(0x400d0000);
    // The dump stays in flash; a later rollback that no crash caused must not carry it as its own.
    const bad = await upload(w, "2.0.1-fail", { behaviour: "fail-self-test" });
    const next = await assign(w, dev.options.id, bad);
    expect(await dev.runCycle()).toMatchObject({ slot: "ota_0", version: "1.0.0", lastBoot: "rolled-back-reported" });
    expect(await updateRecord(w, next.update_id)).toMatchObject({ status: "rolled_back", reset_reason: "software", coredump: null });
  });

  it("refused manifest: a bad signature is reported as SIGNATURE_INVALID and the slot is never touched", async () => {
    const other = { publicKey: Buffer.alloc(32, 7).toString("base64") };
    const { dev } = await device(w, "esp32-badsig", { keys: [other] });
    const { update_id } = await assign(w, dev.options.id, v110);
    const r = await dev.runCycle();
    expect(r.outcome).toMatchObject({ result: "failed", code: "SIGNATURE_INVALID" });
    expect(inspect(dev.flash)).toMatchObject({ bootSlot: "ota_0", versions: { ota_0: "1.0.0", ota_1: null } });
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "failed", error: { code: "SIGNATURE_INVALID" } });
  });

  it.each(["chunked", "close"] as const)("responses without Content-Length (%s) are read to their end by http.ts", async (framing) => {
    const { dev } = await device(w, `esp32-framing-${framing}`);
    const { update_id } = await assign(w, dev.options.id, v110);
    w.proxy.framing = framing; // every response: the API's JSON and the image download
    try {
      const r = await dev.runCycle();
      expect(r).toMatchObject({ slot: "ota_1", version: "1.1.0", lastBoot: "confirmed" });
      expect(await updateRecord(w, update_id)).toMatchObject({ status: "completed" });
    } finally {
      w.proxy.framing = "server";
    }
  });

  it("the network drops and returns: the polling agent carries on and updates", async () => {
    const network = new HostNetwork();
    const { dev } = await device(w, "esp32-netdrop", { extra: { esp32Network: network, agent: { ...TEST_AGENT, pollIntervalMs: 150 } } });
    network.down = true;
    expect((await dev.powerOn({ poll: true })).kind).toBe("running");
    await until(() => network.refused >= 3, "polls refused while the link is down");
    await assign(w, dev.options.id, v110);
    network.down = false;
    // The agent polls again, downloads, verifies and switches: ota_1 becomes the boot slot.
    await until(() => inspect(dev.flash).bootSlot === "ota_1", "the update after the link came back");
    expect(inspect(dev.flash).versions.ota_1).toBe("1.1.0");
    const r = await dev.runCycle();
    expect(r).toMatchObject({ slot: "ota_1", version: "1.1.0" });
  });
});

async function until(done: () => boolean, what: string, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
