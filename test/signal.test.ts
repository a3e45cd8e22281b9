// The core's cancellation primitives: work that waits on a signal lets go of it when it ends, so the agent's
// lifetime signal (which outlives every update) does not collect listeners.
import { describe, expect, it } from "vitest";
import { anySignal, Controller, untilAborted } from "../device/core/signal";
import { sleep } from "../device/core/timing";
import type { ClockPort } from "../device/core/ports";

const clock: ClockPort = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  random: () => 0.5,
};

describe("signals", () => {
  it("sleep wakes on a signal and, either way, leaves no listener behind", async () => {
    const life = new Controller();
    const cancel = new Controller();
    for (let i = 0; i < 20; i++) await sleep(clock, 1, life.signal, cancel.signal);
    expect(life.signal.listenerCount).toBe(0);
    const t0 = Date.now();
    const woke = sleep(clock, 10_000, life.signal, cancel.signal);
    cancel.abort("cancelled");
    await woke;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(life.signal.listenerCount).toBe(0);
    await sleep(clock, 10_000, cancel.signal, life.signal); // already fired: returns at once
    expect(life.signal.listenerCount).toBe(0);
  });

  it("anySignal fires with the first reason and detaches when disposed", () => {
    const a = new Controller();
    const b = new Controller();
    const any = anySignal(a.signal, b.signal);
    b.abort("deadline");
    expect(any.signal.aborted).toBe(true);
    expect(any.signal.reason).toBe("deadline");
    any.dispose();
    expect(a.signal.listenerCount).toBe(0);
  });

  it("untilAborted rejects when the signal fires and lets go when the work settles", async () => {
    const c = new Controller();
    await expect(untilAborted(Promise.resolve(1), c.signal)).resolves.toBe(1);
    expect(c.signal.listenerCount).toBe(0);
    const hung = untilAborted(new Promise(() => {}), c.signal);
    c.abort("stop");
    await expect(hung).rejects.toThrow(/aborted: stop/);
  });
});

describe("listen/off", () => {
  it("calls a listener once on abort (at once if already aborted) and off() removes it", () => {
    const c = new Controller();
    let calls = 0;
    const fn = () => calls++;
    c.signal.listen(fn);
    c.signal.off(fn);
    expect(c.signal.listenerCount).toBe(0);
    c.signal.listen(fn);
    c.abort("x");
    expect(calls).toBe(1);
    c.signal.listen(fn);
    expect(calls).toBe(2);
  });
});
