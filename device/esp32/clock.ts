// ClockPort on Date and Moddable timers.
import Timer from "timer";
import type { ClockPort } from "../core/ports";

export class EspClock implements ClockPort {
  now(): number {
    return Date.now();
  }
  setTimeout(fn: () => void, ms: number): unknown {
    return Timer.set(() => fn(), Math.max(0, ms));
  }
  clearTimeout(handle: unknown): void {
    if (handle) Timer.clear(handle as Timer);
  }
  random(): number {
    return Math.random();
  }
}
