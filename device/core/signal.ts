// Cancellation that the core checks, instead of exceptions thrown from callbacks. XS has no AbortController,
// so this is a minimal one: the agent's lifetime (ended by stop(), i.e. power-off in a simulator), a
// server's cancel of one download and the self-test's deadline are each a Controller whose signal the work
// below it polls or listens to.

/** Thrown when work stops because its signal fired; never reported to the server as an update failure. */
export class AbortedError extends Error {
  constructor(readonly reason: string) {
    super(`aborted: ${reason}`);
  }
}
// The name lives on the prototype: `this.name = …` throws under Moddable's frozen Error.prototype.
Object.defineProperty(AbortedError.prototype, "name", { value: "AbortedError" });

export class Signal {
  private fired: string | null = null;
  private listeners: (() => void)[] = [];

  get aborted(): boolean {
    return this.fired !== null;
  }

  get reason(): string {
    return this.fired ?? "";
  }

  /** Listeners waiting for this signal (work that has not let go of it). */
  get listenerCount(): number {
    return this.listeners.length;
  }

  /** Calls `fn` once when the signal fires (at once if it has); returns a function that unsubscribes. */
  onAbort(fn: () => void): () => void {
    if (this.fired !== null) {
      fn();
      return () => {};
    }
    this.listeners.push(fn);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== fn);
    };
  }

  /** Like onAbort, for a caller that keeps `fn` and lets go with off(fn): no unsubscribe closure (the download
   * registers one per connection and its memory is counted in slots). */
  listen(fn: () => void) {
    if (this.fired !== null) fn();
    else this.listeners.push(fn);
  }

  off(fn: () => void) {
    const i = this.listeners.indexOf(fn);
    if (i >= 0) this.listeners.splice(i, 1);
  }

  throwIfAborted() {
    if (this.fired !== null) throw new AbortedError(this.fired);
  }

  /** Used by Controller only. */
  fire(reason: string) {
    if (this.fired !== null) return;
    this.fired = reason;
    const listeners = this.listeners;
    this.listeners = [];
    for (const l of listeners) l();
  }
}

export class Controller {
  readonly signal = new Signal();

  abort(reason: string) {
    this.signal.fire(reason);
  }
}

/** A signal that fires when any of `signals` fires, with that signal's reason. `dispose()` detaches it from
 * them (the agent's lifetime outlives every update: listeners left on it would pile up). */
export function anySignal(...signals: Signal[]): { signal: Signal; dispose(): void } {
  const c = new Controller();
  const offs = signals.map((s) => s.onAbort(() => c.abort(s.reason)));
  return { signal: c.signal, dispose: () => offs.forEach((off) => off()) };
}

/** Settles like `promise`, or rejects with AbortedError as soon as `signal` fires (the work itself may go on,
 * unobserved: a hook cannot be stopped, only no longer waited for). */
export function untilAborted<T>(promise: Promise<T>, signal: Signal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const off = signal.onAbort(() => reject(new AbortedError(signal.reason)));
    promise.then(
      (v) => (off(), resolve(v)),
      (e) => (off(), reject(e)),
    );
  });
}
