// The agent running on the real XS engine: a new xsnap worker per boot, fed the esbuild bundle of the agent
// core, its port calls served here by the same host ports the Node runtime uses.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BootOutcome, CheckOutcome } from "../../device/core/agent";
import type { AgentConfig } from "../../device/core/config";
import type { HttpBodyStream, OtaWriter, Ports, RawFlashPort, Sha256 } from "../../device/core/ports";
import nacl from "tweetnacl";
import { p256Node } from "../device/node-verifiers";
import type { ArgsOf, CallName, ResultOf } from "./bridge";
import { BULK_FLAG, CALL_NAMES, PUSH, specOf, writeError } from "./bridge";
import { ByteReader, ByteWriter } from "./codec";
import { noNodeCrypto, xsBundle } from "./xs-bundle";
import type { WireConfig } from "./xs-entry";
import type { Meter } from "./xs-worker";
import { XsWorker } from "./xs-worker";

const here = dirname(fileURLToPath(import.meta.url));
let bundle: Promise<string> | null = null;

/** The agent core plus XS-side adapters as one script (cached per process). */
export function agentBundle(): Promise<string> {
  bundle ??= buildBundle();
  return bundle;
}

function buildBundle(): Promise<string> {
  return xsBundle(join(here, "xs-entry.ts"), [noNodeCrypto]);
}

/** Every port but storage: the journal store runs inside the agent's engine, over the raw partition. */
export type HostPorts = Omit<Ports, "storage">;

/** The host's side of every bridge call: the compiler insists on one handler per table entry. */
type Handlers = { [K in CallName]: (...args: ArgsOf<K>) => ResultOf<K> | Promise<ResultOf<K>> };

export interface XsAgentOptions {
  /** Sample live slots (after a GC) every N cranks, for memory figures. */
  sampleLiveSlotsEvery?: number;
  /** Verify manifests with the host's ed25519, as the ESP32 build does with its native module (default). False
   * runs tweetnacl inside XS. */
  nativeEd25519?: boolean;
}

export class XsAgent {
  private worker: XsWorker | null = null;
  private writers = new Map<number, OtaWriter>();
  private streams = new Map<number, HttpBodyStream>();
  private hashes = new Map<number, Sha256>();
  private timers = new Map<number, unknown>();
  /** Runs the host asked the agent for, by ticket. */
  private runs = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private stopped = false;
  private readonly handlers: Handlers;
  /** Meter figures of this boot's worker. */
  idleMeter: Meter | null = null;
  /** Most live XS slots (after a GC) seen between cranks of this boot, when sampling is on. */
  peakHeapCount = 0;
  /** Live slots of the idle machine that loaded the bundle (after a GC). */
  idleHeapCount = 0;
  private pushes = 0;
  /** A call waiting for its chunk (the next message). */
  private staged: Uint8Array | null = null;
  /** gc() evaluations since the idle count: xsnap keeps one slot per evaluated script, which is not the agent's. */
  private samples = 0;

  constructor(
    private readonly config: AgentConfig,
    private readonly ports: HostPorts,
    private readonly raw: RawFlashPort,
    private readonly options: XsAgentOptions = {},
  ) {
    this.handlers = this.makeHandlers();
  }

  get isStopped() {
    return this.stopped;
  }

  get meters() {
    return { totalCompute: this.worker?.totalCompute ?? 0, peakAllocate: this.worker?.peakAllocate ?? 0, peakHeapCount: this.peakHeapCount, idleHeapCount: this.idleHeapCount, idle: this.idleMeter, last: this.worker?.last ?? null };
  }

  /** Evaluates a script in this boot's machine, between the agent's own work (measurements: bench/xs-highwater.ts). */
  async evaluate(code: string): Promise<Meter> {
    if (!this.worker) throw new Error("the agent has not started");
    return this.worker.evaluate(code);
  }

  async start(options: { poll?: boolean; mqtt?: boolean } = {}): Promise<BootOutcome> {
    this.worker = new XsWorker((m) => this.onCall(m));
    this.idleMeter = await this.worker.runProgram(await agentBundle());
    if (this.options.sampleLiveSlotsEvery) this.idleHeapCount = (await this.worker.evaluate("gc()")).currentHeapCount;
    const { selfTests, commands, deferUpdate, metrics, clockTrusted, ...plain } = this.config;
    this.ports.mqtt?.onMessage((topic, payload) => void this.push(PUSH.mqtt, (w) => (w.str(topic), w.str(payload))));
    const config: WireConfig = {
      ...plain,
      selfTests: Object.keys(selfTests ?? {}),
      commands: Object.keys(commands ?? {}),
      metrics: Object.keys(metrics ?? {}),
      hasDeferHook: deferUpdate !== undefined,
      hasClockTrustedHook: clockTrusted !== undefined,
      hasMqtt: Boolean(this.ports.mqtt),
      nativeEd25519: this.options.nativeEd25519 ?? true,
    };
    return (await this.run("start", { options, config })) as BootOutcome;
  }

  /** Runs a baseline inside XS (see bench() in xs-entry.ts); resolves with its result and the crank's meter. */
  async bench(what: string, args: unknown[]): Promise<{ result: unknown; compute: number; ms: number }> {
    await this.worker!.idle();
    const before = this.worker!.totalCompute;
    const t0 = performance.now();
    const result = await this.run("bench", { what, args });
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
    return this.run("check", null) as Promise<CheckOutcome>;
  }

  async stop() {
    this.stopped = true;
    for (const t of this.timers.values()) this.ports.clock.clearTimeout(t);
    this.timers.clear();
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
    for (const w of this.runs.values()) w.reject(new Error("agent stopped (the XS machine was reset)"));
    this.runs.clear();
    this.worker?.kill();
  }

  private run(what: string, args: unknown): Promise<unknown> {
    const ticket = this.nextId++;
    const result = new Promise<unknown>((resolve, reject) => this.runs.set(ticket, { resolve, reject }));
    void this.push(PUSH.run, (w) => (w.u32(ticket), w.str(what), w.str(JSON.stringify(args))));
    return result;
  }

  private async push(kind: number, body: (w: ByteWriter) => void) {
    if (!this.worker?.alive) return;
    const w = new ByteWriter();
    w.u8(kind);
    body(w);
    try {
      await this.worker.command(new Uint8Array(w.take()));
      if (this.options.sampleLiveSlotsEvery && ++this.pushes % this.options.sampleLiveSlotsEvery === 0) {
        // Collect garbage first, so the count is what the agent keeps alive, not what it has dropped.
        const live = await this.worker.evaluate("gc()");
        this.samples++;
        this.peakHeapCount = Math.max(this.peakHeapCount, live.currentHeapCount - this.samples);
      }
    } catch (e) {
      // The worker died or threw: whoever waits learns it.
      for (const w of this.runs.values()) w.reject(e as Error);
      this.runs.clear();
    }
  }

  /** One call from the agent: a sync call is answered in the reply; an async one at once with an empty
   * reply, and later by a completion push carrying its ticket. */
  private async onCall(message: Uint8Array): Promise<Uint8Array> {
    // A call whose chunk follows: keep the call, acknowledge, and run it when the chunk arrives.
    const staged = this.staged;
    this.staged = null;
    if (!staged && message.length >= 2 && (message[1]! << 8) & BULK_FLAG) {
      this.staged = message;
      return new Uint8Array([0]);
    }
    const r = staged ? new ByteReader(staged, message) : new ByteReader(message);
    const name = CALL_NAMES[r.u16() & ~BULK_FLAG];
    const reply = new ByteWriter();
    if (name === undefined) {
      reply.u8(1);
      writeError(reply, new Error("unknown bridge opcode"));
      return new Uint8Array(reply.take());
    }
    const spec = specOf(name);
    const ticket = spec.async ? r.u32() : 0;
    try {
      const args = spec.args.read(r);
      const handler = this.handlers[name] as (...a: unknown[]) => unknown;
      if (spec.async) {
        Promise.resolve()
          .then(() => handler(...args))
          .then(
            (v) => this.push(PUSH.complete, (w) => (w.u32(ticket), w.u8(0), (spec.result as { write(w: ByteWriter, v: unknown): void }).write(w, v))),
            (e) => this.push(PUSH.complete, (w) => (w.u32(ticket), w.u8(1), writeError(w, e))),
          );
        reply.u8(0);
      } else {
        const v = await handler(...args);
        reply.u8(0);
        (spec.result as { write(w: ByteWriter, v: unknown): void }).write(reply, v);
      }
    } catch (e) {
      reply.reset().u8(1);
      writeError(reply, e);
    }
    return new Uint8Array(reply.take());
  }

  private makeHandlers(): Handlers {
    const { ota, http, mqtt, hash, clock, log, restart } = this.ports;
    const raw = this.raw;
    const keep = <T>(map: Map<number, T>, v: T) => {
      const id = this.nextId++;
      map.set(id, v);
      return id;
    };
    const found = <T>(map: Map<number, T>, id: number, what: string): T => {
      const v = map.get(id);
      if (v === undefined) throw new Error(`no open ${what} ${id}`);
      return v;
    };
    const bytesOf = (read: (into: Uint8Array) => void, n: number) => {
      const into = new Uint8Array(n);
      read(into);
      return into;
    };
    return {
      "ota.chipId": () => ota.chipId,
      "ota.running": () => ota.running(),
      "ota.nextUpdate": () => ota.nextUpdate(),
      "ota.other": () => ota.other(),
      "ota.state": (slot) => ota.state(slot),
      "ota.description": (slot) => ota.description(slot),
      "ota.read": (slot, offset, n) => bytesOf((into) => ota.read(slot, offset, into), n),
      "ota.begin": (slot, size) => {
        const w = ota.begin(slot, size);
        return [keep(this.writers, w), w.written];
      },
      "ota.resume": (slot, offset) => {
        const w = ota.resume(slot, offset);
        return [keep(this.writers, w), w.written];
      },
      "ota.setBoot": (slot) => ota.setBoot(slot),
      "ota.markValid": () => ota.markValid(),
      "ota.markInvalid": () => ota.markInvalid(),
      "ota.rollbackPossible": () => ota.rollbackPossible(),
      "writer.write": (id, bytes) => found(this.writers, id, "slot").write(bytes),
      "writer.end": (id) => {
        const w = found(this.writers, id, "slot");
        this.writers.delete(id);
        w.end();
      },
      "writer.abort": (id) => {
        this.writers.get(id)?.abort();
        this.writers.delete(id);
      },
      "http.request": (req) => http.request(req),
      "http.stream": async (url, headers, timeoutMs) => {
        const s = await http.stream(url, headers, timeoutMs);
        return [keep(this.streams, s), s.status, s.headers];
      },
      "stream.read": async (id, n) => {
        const into = new Uint8Array(n);
        const got = await found(this.streams, id, "stream").read(into);
        return into.subarray(0, got);
      },
      "stream.close": (id) => {
        this.streams.get(id)?.close();
        this.streams.delete(id);
      },
      "mqtt.connect": async (subscriptions) => {
        if (!mqtt) throw new Error("no MQTT");
        await mqtt.connect(subscriptions);
      },
      "mqtt.connected": () => mqtt?.connected() ?? false,
      "mqtt.publish": async (topic, payload) => {
        if (!mqtt) throw new Error("no MQTT");
        await mqtt.publish(topic, payload);
      },
      "mqtt.close": async () => {
        await mqtt?.close();
      },
      "hash.create": () => keep(this.hashes, hash.sha256()),
      "hash.update": (id, bytes) => found(this.hashes, id, "hash").update(bytes),
      "hash.digest": (id) => {
        const d = found(this.hashes, id, "hash").digest();
        this.hashes.delete(id);
        return d;
      },
      "hash.verifyEd25519": (message, signature, publicKey) => (hash.verifyEd25519 ?? nacl.sign.detached.verify)(message, signature, publicKey),
      "verify.p256": (message, signature, publicKey) => (this.ports.verifiers?.find((v) => v.alg === "ecdsa-p256-sha256") ?? p256Node).verify(message, signature, publicKey),
      "raw.geometry": () => [raw.size, raw.sectorSize],
      "raw.read": (offset, n) => bytesOf((into) => raw.read(offset, into), n),
      "raw.write": (offset, bytes) => raw.write(offset, bytes),
      "raw.eraseSector": (index) => raw.eraseSector(index),
      "clock.now": () => clock.now(),
      "clock.random": () => clock.random(),
      "clock.setTimeout": (id, ms) => {
        this.timers.set(
          id,
          clock.setTimeout(() => {
            this.timers.delete(id);
            void this.push(PUSH.fire, (w) => w.u32(id));
          }, ms),
        );
      },
      "clock.clearTimeout": (id) => {
        const t = this.timers.get(id);
        if (t !== undefined) clock.clearTimeout(t);
        this.timers.delete(id);
      },
      "hook.run": async (kind, name, args) => {
        const hooks = (kind === "selfTest" ? this.config.selfTests : this.config.commands) as Record<string, (...a: unknown[]) => unknown> | undefined;
        const fn = hooks?.[name];
        if (!fn) throw new Error(`no ${kind} hook ${name}`);
        return (await fn(...args)) ?? null;
      },
      "hook.defer": async (offer) => (await this.config.deferUpdate?.(offer)) ?? null,
      // A metric that throws is left out of the report (health.ts), as on Node: the error crosses back.
      "hook.metric": (name) => {
        const read = this.config.metrics && Object.hasOwn(this.config.metrics, name) ? this.config.metrics[name] : undefined;
        if (!read) throw new Error(`no metric ${name}`);
        return read();
      },
      "hook.clockTrusted": () => this.config.clockTrusted?.() ?? true,
      "restart": (reason) => restart.restart(reason),
      "log": (level, message, fields) => log.log(level, message, fields ?? undefined),
      "run.done": (ticket, ok, payload) => {
        const w = this.runs.get(ticket);
        this.runs.delete(ticket);
        if (ok) w?.resolve(JSON.parse(payload));
        else w?.reject(new Error(`agent on XS: ${payload}`));
      },
    };
  }
}
