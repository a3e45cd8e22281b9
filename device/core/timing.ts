// Deadlines and backoff on the clock port (so simulations can run them on their own clocks).
import type { ClockPort } from "./ports";
import type { Signal } from "./signal";

export class TimeoutError extends Error {
  constructor(readonly what: string, readonly ms: number) {
    super(`${what} timed out after ${ms} ms`);
  }
}
// The name lives on the prototype: `this.name = …` throws under Moddable's frozen Error.prototype.
Object.defineProperty(TimeoutError.prototype, "name", { value: "TimeoutError" });

/** Races `promise` against a timer; `onTimeout` may cancel the work (e.g. close a stalled stream). */
export function withTimeout<T>(clock: ClockPort, promise: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimeout(() => {
      onTimeout?.();
      reject(new TimeoutError(what, ms));
    }, ms);
    promise.then(
      (v) => {
        clock.clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clock.clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** Resolves after `ms`, or as soon as one of `signals` fires (the caller checks why it woke). */
export function sleep(clock: ClockPort, ms: number, ...signals: Signal[]): Promise<void> {
  return new Promise((resolve) => {
    let woken = false;
    let offs: (() => void)[] = [];
    const wake = () => {
      woken = true;
      clock.clearTimeout(timer);
      for (const off of offs) off();
      resolve();
    };
    const timer = clock.setTimeout(wake, ms);
    offs = signals.map((s) => s.onAbort(wake));
    if (woken) for (const off of offs) off(); // a signal had fired already: let go of the others too
  });
}

/** Exponential backoff with full jitter (AWS's recommendation): uniform in [0, min(cap, base * 2^attempt)]. */
export function backoffMs(clock: ClockPort, attempt: number, baseMs: number, capMs = 60_000): number {
  return Math.floor(clock.random() * Math.min(capMs, baseMs * 2 ** attempt));
}
