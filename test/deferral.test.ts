// Deferral: the application says "busy until…" through AgentConfig.deferUpdate; the device reports the update
// as deferred (not a failure), asks again on its next check, and installs once it is free or once the maximum
// deferral, counted from the first deferral even across reboots, has passed. On Node and on XS (the hook
// crosses the bridge as "hook.defer"). Each device has its own clock, moved forward by the test.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deferral } from "../device/core/config";
import type { ClockPort } from "../device/core/ports";
import { seededRandom, type AgentRuntime } from "../host-sim/device/sim-device";
import { assign, device, startWorld, TEST_AGENT, updateRecord, upload, type World } from "./helpers/e2e";

/** Real timers, and a time that the test can move forward (the agent's deadlines are not what is tested here). */
function deviceClock(): ClockPort & { advance(ms: number): void } {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
    random: seededRandom(1),
    advance: (ms) => void (offset += ms),
  };
}

const MINUTE = 60_000;

describe.each(["node", "xs"] as AgentRuntime[])("deferral on %s", (runtime) => {
  let w: World;
  let v110: string;
  beforeAll(async () => {
    w = await startWorld(runtime);
    await upload(w, "1.0.0");
    v110 = await upload(w, "1.1.0");
  });
  afterAll(() => w.close());

  async function busyDevice(name: string, busy: (now: number) => Deferral | null, maxDeferralMs?: number) {
    const asked: string[] = [];
    const clock = deviceClock();
    const id = `${runtime}-${name}`;
    const { dev } = await device(w, id, {
      extra: { clock, agent: { ...TEST_AGENT, ...(maxDeferralMs === undefined ? {} : { maxDeferralMs }), deferUpdate: (o) => (asked.push(o.version), busy(clock.now())) } },
    });
    return { id, dev, asked, clock };
  }

  it("a deferral is reported as deferred, is not a failure, and ends in completion once the application is free", async () => {
    let busy = true;
    const { id, dev, asked } = await busyDevice("defer-1", (now) => (busy ? { until: now + 3_600_000, reason: "printing job 42" } : null));
    const { update_id } = await assign(w, id, v110);
    const first = await dev.runCycle();
    expect(first).toMatchObject({ outcome: { result: "busy" }, version: "1.0.0" });
    expect(dev.http.downloaded).toBe(0);
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "deferred", error: null });
    expect(w.h.logs.some((l) => l.includes("update_deferred") && l.includes(id) && l.includes("printing job 42"))).toBe(true);
    expect(await dev.agent!.checkNow()).toEqual({ result: "busy" }); // still busy on the next check: deferred again
    busy = false;
    expect(await dev.agent!.checkNow()).toMatchObject({ result: "restarting" });
    const done = await dev.runCycle();
    expect(done).toMatchObject({ version: "1.1.0", lastBoot: "confirmed" });
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "completed" });
    expect(asked).toEqual(["1.1.0", "1.1.0", "1.1.0"]);
  });

  it("a busy time already past does not defer", async () => {
    const { id, dev } = await busyDevice("defer-2", (now) => ({ until: now - 1, reason: "was busy" }));
    await assign(w, id, v110);
    expect((await dev.runCycle()).outcome).toMatchObject({ result: "restarting" });
  });

  it("the maximum deferral bounds an application that is always busy", async () => {
    const { id, dev, clock } = await busyDevice("defer-3", (now) => ({ until: now + 3_600_000, reason: "always busy" }), 10 * MINUTE);
    const { update_id } = await assign(w, id, v110);
    expect((await dev.runCycle()).outcome).toEqual({ result: "busy" });
    clock.advance(9 * MINUTE);
    expect(await dev.agent!.checkNow()).toEqual({ result: "busy" });
    clock.advance(1 * MINUTE);
    expect(await dev.agent!.checkNow()).toMatchObject({ result: "restarting" });
    expect(await dev.runCycle()).toMatchObject({ version: "1.1.0", lastBoot: "confirmed" });
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "completed" });
  });

  it("the maximum deferral counts from the first deferral, not from the last reboot", async () => {
    const { id, dev, clock } = await busyDevice("defer-4", (now) => ({ until: now + 3_600_000, reason: "always busy" }), 10 * MINUTE);
    const { update_id } = await assign(w, id, v110);
    expect((await dev.runCycle()).outcome).toEqual({ result: "busy" }); // first deferral: t0
    clock.advance(6 * MINUTE);
    expect(await dev.powerOn()).toMatchObject({ kind: "running", version: "1.0.0" }); // a reboot while deferred
    expect(await dev.agent!.checkNow()).toEqual({ result: "busy" }); // t0 + 6 min
    clock.advance(5 * MINUTE); // t0 + 11 min, but only 5 min since the reboot
    expect(await dev.agent!.checkNow()).toMatchObject({ result: "restarting" });
    expect(await dev.runCycle()).toMatchObject({ version: "1.1.0", lastBoot: "confirmed" });
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "completed" });
  });
});
