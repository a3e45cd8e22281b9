// The agent's lifetime, cancellation and failure kinds, against the real server: a stopped agent writes
// nothing more; a cancel from the server stops a download through its signal; a bug in a port is reported
// at once as INTERNAL_ERROR instead of being retried as if the network had failed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HostPorts } from "../host-sim/xs/xs-agent";
import type { AgentRuntime } from "../host-sim/device/sim-device";
import type { World } from "./helpers/e2e";
import { assign, device, image, inspect, startWorld, updateRecord, upload } from "./helpers/e2e";
import { api, asAdmin } from "./server/harness";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("a stopped agent touches nothing (node)", () => {
  let w: World;
  beforeAll(async () => (w = await startWorld("node")));
  afterAll(async () => w?.close());

  it("power off mid-download: nothing in flight writes flash or journal afterwards", async () => {
    const fw = await upload(w, "2.0.0", { size: 300 * 1024 });
    const { dev } = await device(w, "life-poweroff", { extra: { network: { bytesPerSecond: 200 * 1024 } } });
    await dev.powerOn();
    await assign(w, dev.options.id, fw);
    const check = dev.agent!.checkNow().catch((e: Error) => e);
    await until("the download to start", () => dev.http.downloaded > 40_000);
    const writesBefore = dev.flash.stats.writes;
    await dev.powerOff();
    await check;
    await sleep(600); // the throttled stream would have delivered ~120 KB more by now
    expect(dev.staleFlashAccesses).toBe(0);
    expect(dev.flash.stats.writes).toBe(writesBefore);
    // The next boot resumes from what was durably written.
    const r = await dev.runCycle();
    expect(r).toMatchObject({ version: "2.0.0", lastBoot: "confirmed" });
  });
});

describe.each(["node", "xs"] as AgentRuntime[])("signals and failure kinds (%s)", (runtime) => {
  let w: World;
  beforeAll(async () => (w = await startWorld(runtime)));
  afterAll(async () => w?.close());

  it("a cancel from the server stops the download through its signal", async () => {
    const bytes = image("2.1.0", "healthy", 400 * 1024);
    const fw = await upload(w, "2.1.0", { bytes });
    const { dev } = await device(w, `${runtime}-cancel`, { extra: { mqttUrl: w.h.server.mqttUrl!, network: { bytesPerSecond: 100 * 1024 } } });
    await dev.runForever();
    await until("MQTT", () => dev.mqttConnected);
    const { update_id } = await assign(w, dev.options.id, fw);
    await until("the download to start", () => dev.http.downloaded > 20_000);
    const r = await api(w.h, "POST", `/api/v1/updates/${update_id}/cancel`, { ...asAdmin(w.h), body: { reason: "test" } });
    expect(r.status).toBe(200);
    await until("the agent to give up", () => dev.logs.some((l) => l.includes('"code":"CANCELLED"')));
    await dev.stopForever();
    expect(dev.http.downloaded).toBeLessThan(bytes.length);
    expect(dev.logs.filter((l) => l.includes("download interrupted"))).toEqual([]);
    expect(inspect(dev.flash).bootSlot).toBe("ota_0");
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "cancelled" });
  });

  it("a bug in a port (a TypeError) is reported at once as INTERNAL_ERROR, not retried", async () => {
    const bytes = image("2.2.0", "healthy", 200 * 1024);
    const fw = await upload(w, "2.2.0", { bytes });
    let updates = 0;
    let hashes = 0;
    const buggyHash = (ports: HostPorts): HostPorts => ({
      ...ports,
      hash: {
        sha256() {
          const real = ports.hash.sha256();
          // The first hash is the running image's digest at the first check; the second is the download's.
          const download = ++hashes === 2;
          return {
            update(bytes: Uint8Array) {
              if (download && ++updates === 10) (undefined as unknown as { update(b: Uint8Array): void }).update(bytes);
              real.update(bytes);
            },
            digest: () => real.digest(),
          };
        },
      },
    });
    const { dev } = await device(w, `${runtime}-bug`, { extra: { wrapPorts: buggyHash } });
    await dev.powerOn();
    const { update_id } = await assign(w, dev.options.id, fw);
    const outcome = await dev.agent!.checkNow();
    expect(outcome).toMatchObject({ result: "failed", code: "INTERNAL_ERROR" });
    expect(outcome.result === "failed" && outcome.message).toMatch(/TypeError/);
    expect(dev.logs.filter((l) => l.includes("download interrupted"))).toEqual([]);
    // One attempt that stopped at the bug (a retry would have hashed on past it and succeeded).
    expect(dev.http.downloaded).toBeLessThan(bytes.length);
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "failed", error: { code: "INTERNAL_ERROR" } });
    expect(inspect(dev.flash).bootSlot).toBe("ota_0");
    await dev.powerOff();
  });
});
