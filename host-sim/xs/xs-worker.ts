// Drives one xsnap-worker process (the XS engine built from source by @agoric/xsnap) over its netstring
// pipes: fd 3 carries our requests ("e" evaluate, "s" run a program file, "?" command, "/" reply to its
// query), fd 4 its messages ("." done with meter data, "!" uncaught exception, "?" a query from issueCommand).
// Our own driver, so the test runner needs no SES lockdown. Every worker first runs moddable-preload.js, so its
// built-ins are frozen as they are on the ESP32 after Moddable's preload.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";

const MODDABLE_PRELOAD = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "moddable-preload.js"), "utf8");

export interface Meter {
  /** XS compute count of the crank (the engine's own instruction meter). */
  compute: number;
  /** Bytes XS has allocated for chunks and slots (the->allocatedSpace). */
  allocate: number;
  currentHeapCount: number;
  /** Only from the metered worker of bench/xs-highwater.ts: the chunk arena in bytes and the slot arena in slots. */
  chunkArena?: number;
  slotArena?: number;
}

let variant: { binary: string; env: Record<string, string> } | null = null;

/** Workers started from now on run `binary` with `env` added (bench/xs-highwater.ts); null: the stock worker. */
export function useXsnapWorker(v: { binary: string; env: Record<string, string> } | null) {
  variant = v;
}

export type QueryHandler = (message: Uint8Array) => Promise<Uint8Array>;

export function xsnapWorkerPath(): string {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve("@agoric/xsnap/package.json"));
  const bin = join(pkg, "xsnap-native", "xsnap", "build", "bin", "lin", "release", "xsnap-worker");
  if (!existsSync(bin)) throw new Error(`xsnap-worker was not built at ${bin}: is @agoric/xsnap installed with its install script allowed?`);
  return bin;
}

export class XsWorker {
  private readonly child: ChildProcess;
  private readonly toXs: Writable;
  private buffered = Buffer.alloc(0);
  private waiting: ((message: Buffer) => void) | null = null;
  private inbox: Buffer[] = [];
  private baton: Promise<unknown> = Promise.resolve();
  private exited = false;
  private preloadError: Error | null = null;
  /** Meter of the last finished crank, and running totals. */
  last: Meter = { compute: 0, allocate: 0, currentHeapCount: 0 };
  totalCompute = 0;
  peakAllocate = 0;

  constructor(private readonly onQuery: QueryHandler, options: { name?: string; meteringLimit?: number } = {}) {
    // -l 0 would mean "no limit" only for some builds; a huge limit is portable.
    this.child = spawn(variant?.binary ?? xsnapWorkerPath(), [options.name ?? "ota-agent", "-l", String(options.meteringLimit ?? 2_000_000_000)], {
      stdio: ["ignore", "inherit", "inherit", "pipe", "pipe"],
      env: variant ? { ...process.env, ...variant.env } : process.env,
    });
    this.toXs = this.child.stdio[3] as Writable;
    const fromXs = this.child.stdio[4] as Readable;
    fromXs.on("data", (chunk: Buffer) => this.receive(chunk));
    this.child.on("exit", () => {
      this.exited = true;
      const w = this.waiting;
      this.waiting = null;
      w?.(Buffer.from("!worker exited"));
    });
    this.toXs.on("error", () => {}); // EPIPE after a kill
    // The prelude is the machine's, not the agent's: its crank counts in no total.
    this.runProgram(MODDABLE_PRELOAD).then(
      () => ((this.totalCompute = 0), (this.peakAllocate = 0)),
      (e: Error) => (this.preloadError = new Error(`the Moddable preload prelude failed: ${e.message}`)),
    );
  }

  get alive() {
    return !this.exited;
  }

  /** Evaluates a script (e.g. the agent bundle) and runs its jobs to idle. */
  evaluate(code: string): Promise<Meter> {
    return this.crank(Buffer.concat([Buffer.from("e"), Buffer.from(code, "utf8")]));
  }

  /** Runs a script from a file, as a program ("s"): XS parses it from the file, so the source text never sits in
   * the machine's heap as a string (on the ESP32 not even the bytecode does: it is in flash). An exception is
   * printed on stderr only. */
  runProgram(code: string): Promise<Meter> {
    const path = join(tmpdir(), `esp32-ota-xs-${createHash("sha256").update(code).digest("hex").slice(0, 16)}.js`);
    if (!existsSync(path)) {
      writeFileSync(`${path}.${process.pid}`, code);
      renameSync(`${path}.${process.pid}`, path); // whole or absent, as parallel test workers write the same file
    }
    return this.crank(Buffer.from(`s${path}`, "utf8"));
  }

  /** Calls globalThis.handleCommand(message) in XS and runs to idle. */
  command(message: Uint8Array): Promise<Meter> {
    return this.crank(Buffer.concat([Buffer.from("?"), message]));
  }

  /** Resolves when every request sent so far has finished its crank. */
  idle(): Promise<unknown> {
    return this.baton;
  }

  kill() {
    if (!this.exited) this.child.kill("SIGKILL");
    this.exited = true;
  }

  private crank(request: Buffer): Promise<Meter> {
    const run = this.baton.then(async () => {
      if (this.preloadError) throw this.preloadError;
      if (this.exited) throw new Error("XS worker has exited");
      this.send(request);
      for (;;) {
        const message = await this.next();
        const kind = message[0];
        if (kind === 0x3f /* ? */) {
          const reply = await this.onQuery(message.subarray(1));
          if (this.exited) throw new Error("XS worker has exited");
          this.send(Buffer.concat([Buffer.from("/"), reply]));
        } else if (kind === 0x2e /* . */) {
          const sep = message.indexOf(1, 1);
          if (sep > 0) {
            const meter = JSON.parse(message.subarray(1, sep).toString("utf8")) as Meter;
            this.last = meter;
            this.totalCompute += meter.compute;
            this.peakAllocate = Math.max(this.peakAllocate, meter.allocate);
          }
          return this.last;
        } else {
          throw new Error(`XS: ${message.subarray(1).toString("utf8")}`);
        }
      }
    });
    this.baton = run.catch(() => {});
    return run;
  }

  private send(payload: Buffer) {
    this.toXs.write(Buffer.concat([Buffer.from(`${payload.length}:`), payload, Buffer.from(",")]));
  }

  private next(): Promise<Buffer> {
    const m = this.inbox.shift();
    if (m) return Promise.resolve(m);
    if (this.exited) return Promise.resolve(Buffer.from("!worker exited"));
    return new Promise((resolve) => (this.waiting = resolve));
  }

  private receive(chunk: Buffer) {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const colon = this.buffered.indexOf(0x3a);
      if (colon < 0) return;
      const length = Number(this.buffered.subarray(0, colon).toString("ascii"));
      if (this.buffered.length < colon + 1 + length + 1) return;
      const message = this.buffered.subarray(colon + 1, colon + 1 + length);
      this.buffered = this.buffered.subarray(colon + 1 + length + 1);
      const w = this.waiting;
      if (w) {
        this.waiting = null;
        w(Buffer.from(message));
      } else this.inbox.push(Buffer.from(message));
    }
  }
}
