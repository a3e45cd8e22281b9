// Fake of Moddable's `timer` (modules/base/timer/timer.js over modTimer.c), the host keeping time: set(callback,
// interval = 0, repeat = 0) returns a timer object and calls callback(timer) after interval, then every repeat
// ms if repeat; a one-shot timer is dead once it has fired; clear() ignores anything that is not a live timer
// (xs_timer_clear returns quietly on undefined); schedule() re-arms a live timer; delay() blocks the machine.
import { hostCall, onPush } from "./host";
import { FAKE_PUSH } from "./calls";

type Callback = (timer: Timer) => void;

interface Live {
  timer: Timer;
  callback: Callback;
  repeat: number;
}

const live = new Map<number, Live>();
let nextId = 1;

export default class Timer {
  readonly #id: number;
  private constructor(id: number) {
    this.#id = id;
  }

  static set(callback: Callback, interval = 0, repeat = 0): Timer {
    const timer = new Timer(nextId++);
    live.set(timer.#id, { timer, callback, repeat: Math.max(0, repeat | 0) });
    hostCall("timer.set", timer.#id, Math.max(0, interval | 0));
    return timer;
  }

  static repeat(callback: Callback, interval: number): Timer {
    return Timer.set(callback, interval, interval);
  }

  static schedule(timer: Timer, interval: number, repeat = 0): void {
    const entry = timer instanceof Timer ? live.get(timer.#id) : undefined;
    if (!entry) throw new Error("timer: not a live timer"); // xsmcGetHostDataValidate
    entry.repeat = Math.max(0, repeat | 0);
    hostCall("timer.clear", timer.#id);
    hostCall("timer.set", timer.#id, Math.max(0, interval | 0));
  }

  static clear(timer?: unknown): void {
    if (!(timer instanceof Timer) || !live.delete(timer.#id)) return;
    hostCall("timer.clear", timer.#id);
  }

  static delay(ms: number): void {
    hostCall("timer.delay", Math.max(0, ms | 0));
  }

  /** The host says timer `id` is due. */
  static fire(id: number): void {
    const entry = live.get(id);
    if (!entry) return; // cleared while the push was on its way
    if (entry.repeat > 0) hostCall("timer.set", id, entry.repeat);
    else live.delete(id);
    entry.callback(entry.timer);
  }
}

onPush(FAKE_PUSH.fire, (r) => Timer.fire(r.u32()));
