// Runs inside the XS worker (bundled by esbuild): the real agent core, with thin port adapters that forward
// each call to the Node host over xsnap's issueCommand channel, in the binary form of bridge.ts. The journal
// store runs here, in XS, as on the device; SHA-256 and ed25519 go to the host as they go to native code on
// the ESP32 (crypt's Digest, our native ed25519).
import { Agent } from "../../device/core/agent";
import type { AgentConfig, TrustedKey } from "../../device/core/config";
import { JournalStore } from "../../device/core/journal-store";
import type { ClockPort, HashPort, HttpPort, MqttPort, OtaPort, OtaWriter, Ports, RawFlashPort, SignatureVerifier } from "../../device/core/ports";
import { OtaPortError } from "../../device/core/ports";
import { parseEnvelope, verifySignature } from "../../device/core/trust";
import { ed25519Tweetnacl } from "../../device/core/verifiers/ed25519-tweetnacl";
import type { ArgsOf, AsyncCall, ResultOf, SyncCall, WireError } from "./bridge";
import { BULK_FLAG, OPCODE, PUSH, readError, specOf } from "./bridge";
import type { Codec } from "./codec";
import { ByteReader, ByteWriter } from "./codec";

declare const issueCommand: (message: ArrayBuffer) => ArrayBuffer;

const out = new ByteWriter();
const textEncoder = new TextEncoder();

function toError(e: WireError): Error {
  if (e.name === "OtaPortError") return new OtaPortError(e.espName || "ESP_FAIL", e.message);
  const err = new Error(e.message);
  // Defined, not assigned: Error.prototype is frozen, as on the device (moddable-preload.js).
  return Object.defineProperty(err, "name", { value: e.name, writable: true, configurable: true });
}

/** Sends what `out` holds; a chunk goes after it as its own message (an ArrayBuffer slice: a native copy). */
function send(opcode: number): ArrayBuffer {
  const chunk = out.bulk;
  if (!chunk) return out.take();
  out.patchU16(0, opcode | BULK_FLAG);
  issueCommand(out.take());
  return chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? (chunk.buffer as ArrayBuffer) : (chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength) as ArrayBuffer);
}

function call<K extends SyncCall>(name: K, ...args: ArgsOf<K>): ResultOf<K> {
  const spec = specOf(name);
  out.reset().u16(OPCODE[name]);
  spec.args.write(out, args);
  const r = new ByteReader(issueCommand(send(OPCODE[name])));
  if (r.u8() !== 0) throw toError(readError(r));
  return spec.result.read(r);
}

/** Calls the host answers later, matched by ticket: concurrent calls cannot take each other's answers. */
const pending = new Map<number, { codec: Codec<unknown>; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextTicket = 1;

function callAsync<K extends AsyncCall>(name: K, ...args: ArgsOf<K>): Promise<ResultOf<K>> {
  const spec = specOf(name);
  const ticket = nextTicket++;
  out.reset().u16(OPCODE[name]);
  out.u32(ticket);
  spec.args.write(out, args);
  return new Promise<ResultOf<K>>((resolve, reject) => {
    pending.set(ticket, { codec: spec.result as Codec<unknown>, resolve: resolve as (v: unknown) => void, reject });
    const r = new ByteReader(issueCommand(send(OPCODE[name])));
    if (r.u8() !== 0) {
      pending.delete(ticket);
      reject(toError(readError(r)));
    }
  });
}

function writer([id, written]: [number, number]): OtaWriter {
  return {
    get written() {
      return written;
    },
    write(bytes) {
      call("writer.write", id, bytes);
      written += bytes.length;
    },
    end: () => call("writer.end", id),
    abort: () => call("writer.abort", id),
  };
}

const ota = {
  chipId: 0,
  running: () => call("ota.running"),
  nextUpdate: () => call("ota.nextUpdate"),
  other: () => call("ota.other"),
  state: (slot) => call("ota.state", slot),
  description: (slot) => call("ota.description", slot),
  read: (slot, offset, into) => void into.set(call("ota.read", slot, offset, into.length)),
  begin: (slot, size) => writer(call("ota.begin", slot, size)),
  resume: (slot, offset) => writer(call("ota.resume", slot, offset)),
  setBoot: (slot) => call("ota.setBoot", slot),
  markValid: () => call("ota.markValid"),
  markInvalid: () => call("ota.markInvalid"),
  rollbackPossible: () => call("ota.rollbackPossible"),
} satisfies OtaPort;

const http: HttpPort = {
  request: (req) => callAsync("http.request", req),
  stream: async (url, headers, timeoutMs) => {
    const [id, status, responseHeaders] = await callAsync("http.stream", url, headers, timeoutMs);
    return {
      status,
      headers: responseHeaders,
      // Asynchronous, as the chip's HTTP client is: the crank ends while bytes are awaited, so the host's
      // meters see the agent between chunks (and its timers can fire during a stall).
      read: (into) => callAsync("stream.read", id, into.length).then((got) => (into.set(got), got.length)),
      close: () => call("stream.close", id),
    };
  },
};

const mqttHandlers: ((topic: string, payload: string) => void)[] = [];
const mqtt: MqttPort = {
  connect: (subscriptions) => callAsync("mqtt.connect", subscriptions),
  connected: () => call("mqtt.connected"),
  publish: (topic, payload) => callAsync("mqtt.publish", topic, payload),
  onMessage: (handler) => void mqttHandlers.push(handler),
  close: () => callAsync("mqtt.close"),
};

const timers = new Map<number, () => void>();
let nextTimer = 1;
const clock: ClockPort = {
  now: () => call("clock.now"),
  setTimeout(fn, ms) {
    const id = nextTimer++;
    timers.set(id, fn);
    call("clock.setTimeout", id, ms);
    return id;
  },
  clearTimeout(handle) {
    if (timers.delete(handle as number)) call("clock.clearTimeout", handle as number);
  },
  random: () => call("clock.random"),
};

function hashPort(nativeEd25519: boolean): HashPort {
  return {
    sha256() {
      const id = call("hash.create");
      return { update: (bytes) => call("hash.update", id, bytes), digest: () => call("hash.digest", id) };
    },
    ...(nativeEd25519 ? { verifyEd25519: (message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array) => call("hash.verifyEd25519", message, signature, publicKey) } : {}),
  };
}

/** The ESP32 build's verifiers, as host calls (native calls there: esp32/native/ed25519, esp32/native/p256);
 * without nativeEd25519, ed25519 runs in XS with tweetnacl. */
function verifiers(nativeEd25519: boolean): SignatureVerifier[] {
  const ed25519 = nativeEd25519 ? { ...ed25519Tweetnacl, verify: (m: Uint8Array, s: Uint8Array, k: Uint8Array) => call("hash.verifyEd25519", m, s, k) } : ed25519Tweetnacl;
  return [ed25519, { alg: "ecdsa-p256-sha256", publicKeyLength: 65, signatureLength: 64, verify: (m, s, k) => call("verify.p256", m, s, k) }];
}

function rawFlash(): RawFlashPort {
  const [size, sectorSize] = call("raw.geometry");
  return {
    size,
    sectorSize,
    read: (offset, into) => void into.set(call("raw.read", offset, into.length)),
    write: (offset, bytes) => call("raw.write", offset, bytes),
    eraseSector: (index) => call("raw.eraseSector", index),
  };
}

/** Hooks (self-test checks, update commands) run on the host. */
function hookProxy(kind: string, name: string) {
  return (...args: unknown[]) => callAsync("hook.run", kind, name, args) as Promise<never>;
}

let agent: Agent | null = null;

/** The agent's configuration as it crosses into XS: hooks (functions) stay on the host, named or flagged here. */
export type WireConfig = Omit<AgentConfig, "selfTests" | "commands" | "deferUpdate" | "metrics" | "clockTrusted"> & {
  selfTests: string[];
  commands: string[];
  /** Names of the application's metrics; each is read on the host when a health report is made. */
  metrics: string[];
  hasDeferHook: boolean;
  hasClockTrustedHook: boolean;
  hasMqtt: boolean;
  nativeEd25519: boolean;
};

function ports(c: WireConfig): Ports {
  ota.chipId = call("ota.chipId");
  return {
    ota,
    http,
    ...(c.hasMqtt ? { mqtt } : {}),
    hash: hashPort(c.nativeEd25519),
    verifiers: verifiers(c.nativeEd25519),
    // xsnap has TextEncoder, as the ESP32 build has Moddable's text/encoder.
    storage: new JournalStore(rawFlash(), undefined, textEncoder),
    clock,
    restart: { restart: (reason) => call("restart", reason) },
    log: { log: (level, message, fields) => call("log", level, message, fields ?? null) },
  };
}

/** What the host asks the agent to do; each answers through run.done with the run's ticket. */
function run(what: string, args: unknown): Promise<unknown> {
  switch (what) {
    case "start": {
      const { options, config } = args as { options: { poll?: boolean; mqtt?: boolean }; config: WireConfig };
      const selfTests = Object.fromEntries(config.selfTests.map((n) => [n, hookProxy("selfTest", n)]));
      const commands = Object.fromEntries(config.commands.map((n) => [n, hookProxy("command", n)]));
      const metrics = Object.fromEntries(config.metrics.map((n) => [n, () => call("hook.metric", n)]));
      const deferUpdate: AgentConfig["deferUpdate"] = config.hasDeferHook ? (offer) => callAsync("hook.defer", offer) : undefined;
      const clockTrusted: AgentConfig["clockTrusted"] = config.hasClockTrustedHook ? () => call("hook.clockTrusted") : undefined;
      const hooks = { selfTests, commands, metrics, ...(deferUpdate ? { deferUpdate } : {}), ...(clockTrusted ? { clockTrusted } : {}) };
      agent = new Agent({ ...config, ...hooks }, ports(config));
      return agent.start(options);
    }
    case "check":
      return agent ? agent.checkNow() : Promise.reject(new Error("the agent has not started"));
    case "stop":
      return agent ? agent.stop() : Promise.resolve();
    case "bench":
      return bench(args as { what: string; args: unknown[] });
    default:
      return Promise.reject(new Error(`unknown run ${what}`));
  }
}

/** Baselines for `npm run bench`. The copy loop is what the agent's download would be with nothing but the
 * chunk moves: the same port adapters (asynchronous reads into one buffer, the same flash writes). */
async function bench({ what, args }: { what: string; args: unknown[] }): Promise<unknown> {
  if (what === "copy") {
    const [url, headers, slot, size, chunk] = args as [string, Record<string, string>, Parameters<OtaPort["begin"]>[0], number, number];
    const stream = await http.stream(url, headers, 30_000);
    const w = ota.begin(slot, size);
    const buffer = new Uint8Array(chunk);
    let fill = 0;
    for (;;) {
      const n = await stream.read(buffer.subarray(fill));
      if (n === 0) break;
      fill += n;
      if (fill === buffer.length) {
        w.write(buffer);
        fill = 0;
      }
    }
    if (fill > 0) w.write(buffer.subarray(0, fill));
    w.abort();
    stream.close();
    return w.written;
  }
  if (what === "verify" || what === "verify-native") {
    // "verify": tweetnacl in XS, what a build without the native verifiers would pay; "verify-native": the ESP32
    // build's path, the verifiers of the given algorithms as native (here host) calls.
    const [body, keys, algs] = args as [string, TrustedKey[], string[]?];
    const env = parseEnvelope(body);
    const native = verifiers(true).filter((v) => !algs || algs.includes(v.alg));
    if (env) verifySignature(env, keys, what === "verify" ? [ed25519Tweetnacl] : native);
    return true;
  }
  throw new Error(`unknown bench ${what}`);
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

(globalThis as unknown as { handleCommand: (m: ArrayBuffer) => ArrayBuffer }).handleCommand = (message) => {
  const r = new ByteReader(message);
  const kind = r.u8();
  if (kind === PUSH.complete) {
    const ticket = r.u32();
    const waiter = pending.get(ticket);
    pending.delete(ticket);
    if (r.u8() === 0) waiter?.resolve(waiter.codec.read(r));
    else waiter?.reject(toError(readError(r)));
  } else if (kind === PUSH.fire) {
    const id = r.u32();
    const fn = timers.get(id);
    timers.delete(id);
    fn?.();
  } else if (kind === PUSH.mqtt) {
    const topic = r.str();
    const payload = r.str();
    for (const h of mqttHandlers) h(topic, payload);
  } else if (kind === PUSH.run) {
    const ticket = r.u32();
    const what = r.str();
    const args: unknown = JSON.parse(r.str());
    run(what, args).then(
      (v) => call("run.done", ticket, true, JSON.stringify(v ?? null)),
      (e) => call("run.done", ticket, false, errorText(e)),
    );
  }
  return new ArrayBuffer(0);
};

