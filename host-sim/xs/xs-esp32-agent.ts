// The agent over the REAL ESP32 adapters on the XS engine: a new xsnap worker per boot, fed esp32Bundle(); the
// Moddable fakes' calls are served here by the simulator's esp_ota model and flash, real TCP sockets, Node's
// SHA-256 and ed25519, and the simulated device's clock, log, health and restart.
import { createHash } from "node:crypto";
import type { Hash } from "node:crypto";
import nacl from "tweetnacl";
import type { BootOutcome, CheckOutcome } from "../../device/core/agent";
import type { AgentConfig } from "../../device/core/config";
import type { HealthPort } from "../../device/core/ports";
import { p256Node } from "../device/node-verifiers";
import type { EspOta } from "../esp/esp-ota";
import { writeError } from "./bridge";
import { ByteReader, ByteWriter } from "./codec";
import { esp32Bundle } from "./esp32-bundle";
import { espotaFunctions, flashFunctions } from "./esp32-native-host";
import { HostNetwork, HostSockets } from "./esp32-network-host";
import type { Esp32WireConfig, FakeArgs, FakeCallName, FakeResult } from "./moddable-fakes/calls";
import { FAKE_CALL_NAMES, FAKE_PUSH, TCP_EVENT, fakeSpec } from "./moddable-fakes/calls";
import type { HostPorts } from "./xs-agent";
import { XsWorker } from "./xs-worker";

type Handlers = { [K in FakeCallName]: (...args: FakeArgs<K>) => FakeResult<K> | Promise<FakeResult<K>> };

/** crypt's digest names (modCrypt.c gDigests) → Node's. */
const DIGESTS: Record<string, string> = { SHA1: "sha1", SHA224: "sha224", SHA256: "sha256", SHA384: "sha384", SHA512: "sha512", MD5: "md5" };

export class XsEsp32Agent {
  private worker: XsWorker | null = null;
  private readonly sockets: HostSockets;
  private readonly timers = new Map<number, unknown>();
  private readonly digests = new Map<number, { type: string; hash: Hash }>();
  private readonly runs = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly handlers: Handlers;
  private nextId = 1;

  constructor(
    private readonly config: AgentConfig,
    private readonly ports: HostPorts,
    esp: EspOta,
    readonly network: HostNetwork = new HostNetwork(),
  ) {
    this.sockets = new HostSockets(network, (id, event, bytes) =>
      this.push(FAKE_PUSH.tcp, (w) => (w.u32(id), w.u8(TCP_EVENT[event]), w.bytes(bytes ?? new Uint8Array(0)))),
    );
    const health: HealthPort = ports.health ?? { resetReason: () => "power_on", uptimeMs: () => 0, freeHeap: () => 0, minFreeHeap: () => 0 };
    this.handlers = this.makeHandlers(esp, health);
  }

  async start(options: { poll?: boolean; mqtt?: boolean } = {}): Promise<BootOutcome> {
    this.worker = new XsWorker((m) => this.onCall(m), { name: "ota-agent-esp32" });
    await this.worker.evaluate(await esp32Bundle());
    const { selfTests, commands: _commands, clockTrusted: _clock, deferUpdate: _defer, metrics: _metrics, ...plain } = this.config;
    const config: Esp32WireConfig = { ...plain, selfTests: Object.keys(selfTests ?? {}) };
    return (await this.run("start", { options: { poll: options.poll ?? false }, config })) as BootOutcome;
  }

  /** One request through the bundle's HTTP client, its callbacks traced (http-probe.ts); no agent is started. */
  async httpProbe(args: { host: string; port: number; path: string; reads: (number | string)[] }, bundle?: string): Promise<unknown[]> {
    this.worker = new XsWorker((m) => this.onCall(m), { name: "ota-http-probe" });
    await this.worker.evaluate(bundle ?? (await esp32Bundle()));
    return (await this.run("http-probe", args)) as unknown[];
  }

  checkNow(): Promise<CheckOutcome> {
    return this.run("check", null) as Promise<CheckOutcome>;
  }

  async stop() {
    for (const t of this.timers.values()) this.ports.clock.clearTimeout(t);
    this.timers.clear();
    this.sockets.closeAll();
    for (const w of this.runs.values()) w.reject(new Error("agent stopped (the XS machine was reset)"));
    this.runs.clear();
    this.worker?.kill();
  }

  private run(what: string, args: unknown): Promise<unknown> {
    const ticket = this.nextId++;
    const result = new Promise<unknown>((resolve, reject) => this.runs.set(ticket, { resolve, reject }));
    void this.push(FAKE_PUSH.run, (w) => (w.u32(ticket), w.str(what), w.str(JSON.stringify(args))));
    return result;
  }

  private async push(kind: number, body: (w: ByteWriter) => void) {
    if (!this.worker?.alive) return;
    const w = new ByteWriter();
    w.u8(kind);
    body(w);
    try {
      await this.worker.command(new Uint8Array(w.take()));
    } catch (e) {
      for (const r of this.runs.values()) r.reject(e as Error);
      this.runs.clear();
    }
  }

  private async onCall(message: Uint8Array): Promise<Uint8Array> {
    const r = new ByteReader(message);
    const reply = new ByteWriter();
    const name = FAKE_CALL_NAMES[r.u16()];
    if (name === undefined) return (reply.u8(1), writeError(reply, new Error("unknown fake opcode")), new Uint8Array(reply.take()));
    const spec = fakeSpec(name);
    const ticket = spec.async ? r.u32() : 0;
    const result = spec.result as { write(w: ByteWriter, v: unknown): void };
    try {
      const args = spec.args.read(r);
      const handler = this.handlers[name] as (...a: unknown[]) => unknown;
      if (spec.async) {
        Promise.resolve()
          .then(() => handler(...args))
          .then(
            (v) => this.push(FAKE_PUSH.complete, (w) => (w.u32(ticket), w.u8(0), result.write(w, v))),
            (e) => this.push(FAKE_PUSH.complete, (w) => (w.u32(ticket), w.u8(1), writeError(w, e))),
          );
        reply.u8(0);
      } else {
        const v = await handler(...args);
        reply.u8(0);
        result.write(reply, v);
      }
    } catch (e) {
      reply.reset().u8(1);
      writeError(reply, e);
    }
    return new Uint8Array(reply.take());
  }

  private makeHandlers(esp: EspOta, health: HealthPort): Handlers {
    const { clock, log, restart } = this.ports;
    const espota = espotaFunctions({ esp, health, restart: () => restart.restart("esp_restart") });
    const flash = flashFunctions(esp);
    const digest = (id: number) => {
      const d = this.digests.get(id);
      if (!d) throw new Error(`no digest ${id}`);
      return d;
    };
    return {
      "timer.set": (id, ms) => {
        this.timers.set(
          id,
          clock.setTimeout(() => {
            this.timers.delete(id);
            void this.push(FAKE_PUSH.fire, (w) => w.u32(id));
          }, ms),
        );
      },
      "timer.clear": (id) => {
        const t = this.timers.get(id);
        if (t !== undefined) clock.clearTimeout(t);
        this.timers.delete(id);
      },
      "timer.delay": (ms) => new Promise<void>((resolve) => clock.setTimeout(resolve, ms)),
      "digest.create": (type) => {
        const node = DIGESTS[type.toUpperCase()];
        if (!node) throw new Error(`crypt: unsupported digest ${type}`);
        const id = this.nextId++;
        this.digests.set(id, { type: node, hash: createHash(node) });
        return id;
      },
      "digest.write": (id, bytes) => void digest(id).hash.update(bytes),
      "digest.close": (id) => {
        const d = digest(id);
        const out = new Uint8Array(d.hash.digest());
        d.hash = createHash(d.type);
        return out;
      },
      "digest.reset": (id) => {
        const d = digest(id);
        d.hash = createHash(d.type);
      },
      "ed25519.verify": (message, signature, publicKey) => signature.length === 64 && publicKey.length === 32 && nacl.sign.detached.verify(message, signature, publicKey),
      "p256.verify": (message, signature, publicKey) => p256Node.verify(message, signature, publicKey),
      "flash.open": (label) => flash.open(label),
      "flash.read": (label, offset, n) => flash.read(label, offset, n),
      "flash.write": (label, offset, bytes) => flash.write(label, offset, bytes),
      "flash.erase": (label, offset, n) => flash.erase(label, offset, n),
      "net.resolve": (host) => this.sockets.resolve(host),
      "tcp.open": (address, port) => this.sockets.open(address, port),
      "tcp.write": (id, bytes) => this.sockets.write(id, bytes),
      "tcp.close": (id) => this.sockets.close(id),
      "espota.call": (name, args) => espota.call(name, args),
      "espota.read": (label, offset, n) => espota.read(label, offset, n),
      "espota.write": (bytes) => espota.write(bytes),
      "hook.run": async (name, args) => {
        const fn = (this.config.selfTests as Record<string, (...a: unknown[]) => unknown> | undefined)?.[name];
        if (!fn) throw new Error(`no self-test ${name}`);
        return (await fn(...args)) ?? null;
      },
      "trace": (text) => log.log("info", text.replace(/\n$/, "")),
      "run.done": (ticket, ok, payload) => {
        const w = this.runs.get(ticket);
        this.runs.delete(ticket);
        if (ok) w?.resolve(JSON.parse(payload));
        else w?.reject(new Error(`agent on XS (ESP32 adapters): ${payload}`));
      },
    };
  }
}
