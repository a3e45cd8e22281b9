// The agent running on the real XS engine: a new xsnap worker per boot, fed the esbuild bundle of the agent
// core, its port calls served here by the same host ports the Node runtime uses.
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BootOutcome, CheckOutcome } from "../../device/core/agent";
import type { AgentConfig } from "../../device/core/config";
import type { HttpBodyStream, OtaWriter, Ports, RawFlashPort, Sha256, Slot } from "../../device/core/ports";
import { OtaPortError } from "../../device/core/ports";
import type { Meter } from "./xs-worker";
import { XsWorker } from "./xs-worker";
import type { CallHeader, PushHeader } from "./wire";
import { decodeMessage, encodeMessage } from "./wire";

const here = dirname(fileURLToPath(import.meta.url));
let bundle: Promise<string> | null = null;

/** The agent core plus XS-side adapters as one script (cached per process). */
export function agentBundle(): Promise<string> {
  bundle ??= buildBundle();
  return bundle;
}

async function buildBundle(): Promise<string> {
  const out = await build({
    entryPoints: [join(here, "xs-entry.ts")],
    bundle: true,
    format: "iife",
    platform: "neutral",
    target: "es2022",
    mainFields: ["module", "main"],
    write: false,
    minify: false,
    // tweetnacl probes for Node's crypto only to seed its PRNG; signature checks need no randomness.
    plugins: [{ name: "no-node-crypto", setup: (b) => b.onResolve({ filter: /^crypto$/ }, () => ({ path: "crypto", namespace: "empty" })) }, emptyNamespace()],
  });
  return out.outputFiles[0]!.text;
}

function emptyNamespace() {
  return {
    name: "empty-modules",
    setup(b: { onLoad: (o: { filter: RegExp; namespace: string }, cb: () => { contents: string }) => void }) {
      b.onLoad({ filter: /.*/, namespace: "empty" }, () => ({ contents: "module.exports = {};" }));
    },
  };
}

type Reply = { header: unknown; tail?: Uint8Array };

/** Every port but storage: the journal store runs inside the agent's engine, over the raw partition. */
export type HostPorts = Omit<Ports, "storage">;

export class XsAgent {
  private worker: XsWorker | null = null;
  private writers = new Map<number, OtaWriter>();
  private streams = new Map<number, HttpBodyStream>();
  private hashes = new Map<number, Sha256>();
  private timers = new Map<number, unknown>();
  private done = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private stopped = false;
  /** Meter figures of this boot's worker. */
  idleMeter: Meter | null = null;
  /** Most live XS slots (after a GC) seen between cranks of this boot, when sampling is on. */
  peakHeapCount = 0;
  /** Live slots of the idle machine that loaded the bundle (after a GC). */
  idleHeapCount = 0;
  private pushes = 0;

  constructor(
    private readonly config: AgentConfig,
    private readonly ports: HostPorts,
    private readonly raw: RawFlashPort,
    private readonly options: { sampleLiveSlotsEvery?: number } = {},
  ) {}

  get isStopped() {
    return this.stopped;
  }

  get meters() {
    return { totalCompute: this.worker?.totalCompute ?? 0, peakAllocate: this.worker?.peakAllocate ?? 0, peakHeapCount: this.peakHeapCount, idleHeapCount: this.idleHeapCount, idle: this.idleMeter };
  }

  async start(options: { poll?: boolean; mqtt?: boolean } = {}): Promise<BootOutcome> {
    this.worker = new XsWorker((m) => this.onQuery(m));
    this.idleMeter = await this.worker.evaluate(await agentBundle());
    if (this.options.sampleLiveSlotsEvery) this.idleHeapCount = (await this.worker.evaluate("gc()")).currentHeapCount;
    const { selfTests, commands, ...plain } = this.config;
    this.ports.mqtt?.onMessage((topic, payload) => void this.push({ mqtt: [topic, payload] }));
    const wireConfig = { ...plain, selfTests: Object.keys(selfTests ?? {}), commands: Object.keys(commands ?? {}), hasMqtt: Boolean(this.ports.mqtt) };
    return (await this.run("start", { run: "start", options, config: wireConfig })) as BootOutcome;
  }

  /** Runs a baseline inside XS (see bench() in xs-entry.ts); resolves with its result and the crank's meter. */
  async bench(what: string, args: unknown[]): Promise<{ result: unknown; compute: number; ms: number }> {
    await this.worker!.idle();
    const before = this.worker!.totalCompute;
    const t0 = performance.now();
    const result = await this.run("bench", { run: "bench", what, args });
    const ms = performance.now() - t0;
    await this.worker!.idle();
    return { result, compute: this.worker!.totalCompute - before, ms };
  }

  /** Total XS compute of this boot, once the worker has finished what it is doing. */
  async settledCompute(): Promise<number> {
    await this.worker?.idle();
    return this.worker?.totalCompute ?? 0;
  }

  checkNow(): Promise<CheckOutcome> {
    return this.run("check", { run: "check" }) as Promise<CheckOutcome>;
  }

  async stop() {
    this.stopped = true;
    for (const t of this.timers.values()) this.ports.clock.clearTimeout(t);
    this.timers.clear();
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
    for (const w of this.done.values()) w.reject(new Error("agent stopped (the XS machine was reset)"));
    this.done.clear();
    this.worker?.kill();
  }

  private run(name: string, push: PushHeader): Promise<unknown> {
    const result = new Promise<unknown>((resolve, reject) => this.done.set(name, { resolve, reject }));
    void this.push(push);
    return result;
  }

  private async push(push: PushHeader, tail?: Uint8Array) {
    if (!this.worker?.alive) return;
    try {
      await this.worker.command(encodeMessage(push, tail));
      if (this.options.sampleLiveSlotsEvery && ++this.pushes % this.options.sampleLiveSlotsEvery === 0) {
        // Collect garbage first, so the count is what the agent keeps alive, not what it has dropped.
        const live = await this.worker.evaluate("gc()");
        this.peakHeapCount = Math.max(this.peakHeapCount, live.currentHeapCount);
      }
    } catch (e) {
      // The worker died or threw: whoever waits learns it.
      for (const w of this.done.values()) w.reject(e as Error);
      this.done.clear();
    }
  }

  private async onQuery(message: Uint8Array): Promise<Uint8Array> {
    const { header, tail } = decodeMessage(message);
    const { call, args } = header as CallHeader;
    try {
      const r = await this.dispatch(call, args, tail);
      return encodeMessage({ ok: r.header ?? null }, r.tail);
    } catch (e) {
      const err = e as Error;
      return encodeMessage({ error: { name: err.name ?? "Error", message: String(err.message ?? err), ...(err instanceof OtaPortError ? { espName: err.espName } : {}) } });
    }
  }

  private async dispatch(call: string, a: unknown[], tail?: Uint8Array): Promise<Reply> {
    const { ota, http, mqtt, hash, clock, log, restart } = this.ports;
    const ok = (header: unknown, t?: Uint8Array): Reply => (t ? { header, tail: t } : { header });
    switch (call) {
      case "ota.chipId":
        return ok(ota.chipId);
      case "ota.running":
        return ok(ota.running());
      case "ota.nextUpdate":
        return ok(ota.nextUpdate());
      case "ota.other":
        return ok(ota.other());
      case "ota.state":
        return ok(ota.state(a[0] as Slot));
      case "ota.description":
        return ok(ota.description(a[0] as Slot));
      case "ota.read": {
        const into = new Uint8Array(a[2] as number);
        ota.read(a[0] as Slot, a[1] as number, into);
        return ok(null, into);
      }
      case "ota.begin":
      case "ota.resume": {
        const w = call === "ota.begin" ? ota.begin(a[0] as Slot, a[1] as number) : ota.resume(a[0] as Slot, a[1] as number);
        const id = this.nextId++;
        this.writers.set(id, w);
        return ok({ id, written: w.written });
      }
      case "writer.write":
        this.writers.get(a[0] as number)!.write(tail ?? new Uint8Array(0));
        return ok(null);
      case "writer.end":
      case "writer.abort": {
        const w = this.writers.get(a[0] as number);
        this.writers.delete(a[0] as number);
        if (call === "writer.end") w!.end();
        else w?.abort();
        return ok(null);
      }
      case "ota.setBoot":
        ota.setBoot(a[0] as Slot);
        return ok(null);
      case "ota.markValid":
        ota.markValid();
        return ok(null);
      case "ota.markInvalid":
        ota.markInvalid();
        return ok(null);
      case "ota.rollbackPossible":
        return ok(ota.rollbackPossible());
      case "http.request":
        return ok(await http.request(a[0] as Parameters<typeof http.request>[0]));
      case "http.stream": {
        const timeoutMs = a[2] as number;
        const s = await http.stream(a[0] as string, a[1] as Record<string, string>, timeoutMs);
        const id = this.nextId++;
        this.streams.set(id, Object.assign(s, { timeoutMs }));
        return ok({ id, status: s.status, headers: s.headers });
      }
      case "stream.read": {
        // A blocking read (the bench's copy loop): XS timers cannot fire meanwhile, so the host times it out.
        const s = this.streams.get(a[0] as number) as (HttpBodyStream & { timeoutMs: number }) | undefined;
        if (!s) throw new Error("stream closed");
        const into = new Uint8Array(a[1] as number);
        const n = await withHostTimeout(s.read(into), s.timeoutMs, () => s.close());
        return ok(null, n > 0 ? into.subarray(0, n) : undefined);
      }
      case "stream.readAsync": {
        const s = this.streams.get(a[0] as number);
        const ticket = this.nextId++;
        const into = new Uint8Array(a[1] as number);
        (s ? s.read(into) : Promise.reject(new Error("stream closed"))).then(
          (n) => this.push({ readDone: ticket, n }, n > 0 ? into.subarray(0, n) : undefined),
          (e) => this.push({ readDone: ticket, n: 0, error: String((e as Error)?.message ?? e) }),
        );
        return ok(ticket);
      }
      case "stream.close":
        this.streams.get(a[0] as number)?.close();
        this.streams.delete(a[0] as number);
        return ok(null);
      case "mqtt.connect":
        if (!mqtt) throw new Error("no MQTT");
        await mqtt.connect(a[0] as string[]);
        return ok(null);
      case "mqtt.connected":
        return ok(mqtt?.connected() ?? false);
      case "mqtt.publish":
        await mqtt!.publish(a[0] as string, a[1] as string);
        return ok(null);
      case "mqtt.close":
        await mqtt?.close();
        return ok(null);
      case "hash.create": {
        const id = this.nextId++;
        this.hashes.set(id, hash.sha256());
        return ok(id);
      }
      case "hash.update":
        this.hashes.get(a[0] as number)!.update(tail ?? new Uint8Array(0));
        return ok(null);
      case "hash.digest": {
        const d = this.hashes.get(a[0] as number)!.digest();
        this.hashes.delete(a[0] as number);
        return ok(null, d);
      }
      case "raw.geometry":
        return ok({ size: this.raw.size, sectorSize: this.raw.sectorSize });
      case "raw.read": {
        const into = new Uint8Array(a[1] as number);
        this.raw.read(a[0] as number, into);
        return ok(null, into);
      }
      case "raw.write":
        this.raw.write(a[0] as number, tail ?? new Uint8Array(0));
        return ok(null);
      case "raw.eraseSector":
        this.raw.eraseSector(a[0] as number);
        return ok(null);
      case "clock.now":
        return ok(clock.now());
      case "clock.random":
        return ok(clock.random());
      case "clock.setTimeout": {
        const id = a[0] as number;
        this.timers.set(
          id,
          clock.setTimeout(() => {
            this.timers.delete(id);
            void this.push({ fire: id });
          }, a[1] as number),
        );
        return ok(null);
      }
      case "clock.clearTimeout": {
        const t = this.timers.get(a[0] as number);
        if (t !== undefined) clock.clearTimeout(t);
        this.timers.delete(a[0] as number);
        return ok(null);
      }
      case "hook.start": {
        const [kind, name, args] = a as [string, string, unknown[]];
        const fn = (kind === "selfTest" ? this.config.selfTests : this.config.commands)?.[name] as ((...x: unknown[]) => unknown) | undefined;
        const ticket = this.nextId++;
        Promise.resolve()
          .then(() => fn!(...(args ?? [])))
          .then(
            (v) => this.push({ hookDone: ticket, ok: v ?? null }),
            (e) => this.push({ hookDone: ticket, error: String((e as Error)?.message ?? e) }),
          );
        return ok(ticket);
      }
      case "restart":
        restart.restart(a[0] as string);
        return ok(null);
      case "log":
        log.log(a[0] as never, a[1] as string, (a[2] as Record<string, string>) ?? undefined);
        return ok(null);
      case "done": {
        const [name, value, error] = a as [string, unknown, string | undefined];
        const w = this.done.get(name);
        this.done.delete(name);
        if (error !== undefined) w?.reject(new Error(`agent on XS: ${error}`));
        else w?.resolve(value);
        return ok(null);
      }
      default:
        throw new Error(`unknown port call ${call}`);
    }
  }
}

function withHostTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      onTimeout();
      reject(new Error(`download read timed out after ${ms} ms`));
    }, ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}
