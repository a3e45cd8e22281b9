// Runs inside the XS worker (bundled by esbuild): the real agent core, with thin port adapters that forward
// each call to the Node host over xsnap's synchronous issueCommand channel. Ed25519 and the journal store run
// here, in XS, as on the device; SHA-256 goes to the host as it goes to native code on the ESP32.
import { Agent } from "../../device/core/agent";
import type { AgentConfig, TrustedKey } from "../../device/core/config";
import { parseEnvelope, verifySignature } from "../../device/core/trust";
import { JournalStore } from "../../device/core/journal-store";
import type {
  AppDescription,
  ClockPort,
  HttpBodyStream,
  HttpPort,
  HttpRequest,
  HttpResponse,
  ImageState,
  MqttPort,
  OtaPort,
  OtaWriter,
  Ports,
  RawFlashPort,
  Slot,
} from "../../device/core/ports";
import { OtaPortError } from "../../device/core/ports";
import type { PushHeader, ReplyHeader } from "./wire";
import { decodeMessage, encodeMessage } from "./wire";

declare const issueCommand: (message: ArrayBuffer) => ArrayBuffer;

function call(name: string, args: unknown[] = [], tail?: Uint8Array): { ok: unknown; tail?: Uint8Array } {
  const out = encodeMessage({ call: name, args }, tail);
  const reply = decodeMessage(new Uint8Array(issueCommand(out.buffer as ArrayBuffer)));
  const header = reply.header as ReplyHeader;
  if ("error" in header) {
    const e = header.error;
    if (e.name === "OtaPortError") throw new OtaPortError(e.espName ?? "ESP_FAIL", e.message);
    const err = new Error(e.message);
    err.name = e.name;
    throw err;
  }
  return { ok: header.ok, ...(reply.tail ? { tail: reply.tail } : {}) };
}

const value = <T>(name: string, ...args: unknown[]) => call(name, args).ok as T;

/** Host calls that are asynchronous on the host are synchronous here; the agent still sees promises. */
function later<T>(fn: () => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      resolve(fn());
    } catch (e) {
      reject(e);
    }
  });
}

function copyInto(into: Uint8Array, tail: Uint8Array | undefined) {
  if (tail) into.set(tail.subarray(0, into.length));
}

const ota = {
  chipId: 0,
  running: () => value<Slot>("ota.running"),
  nextUpdate: () => value<Slot | null>("ota.nextUpdate"),
  other: () => value<Slot | null>("ota.other"),
  state: (slot) => value<ImageState>("ota.state", slot),
  description: (slot) => value<AppDescription | null>("ota.description", slot),
  read: (slot, offset, into) => copyInto(into, call("ota.read", [slot, offset, into.length]).tail),
  begin: (slot, size) => writer(value<{ id: number; written: number }>("ota.begin", slot, size)),
  resume: (slot, offset) => writer(value<{ id: number; written: number }>("ota.resume", slot, offset)),
  setBoot: (slot) => void call("ota.setBoot", [slot]),
  markValid: () => void call("ota.markValid"),
  markInvalid: () => void call("ota.markInvalid"),
  rollbackPossible: () => value<boolean>("ota.rollbackPossible"),
} satisfies OtaPort;

function writer(opened: { id: number; written: number }): OtaWriter {
  let written = opened.written;
  return {
    get written() {
      return written;
    },
    write(bytes) {
      call("writer.write", [opened.id], bytes);
      written += bytes.length;
    },
    end: () => void call("writer.end", [opened.id]),
    abort: () => void call("writer.abort", [opened.id]),
  };
}

const http: HttpPort = {
  request: (req: HttpRequest) => later(() => value<HttpResponse>("http.request", req)),
  stream: (url, headers, timeoutMs) =>
    later(() => {
      const s = value<{ id: number; status: number; headers: Record<string, string> }>("http.stream", url, headers, timeoutMs);
      const stream: HttpBodyStream = {
        status: s.status,
        headers: s.headers,
        // Asynchronous, as the chip's HTTP client is: the crank ends while bytes are awaited, so the host's
        // meters see the agent between chunks (and its timers can fire during a stall).
        read: (into) =>
          new Promise<number>((resolve, reject) => {
            const ticket = value<number>("stream.readAsync", s.id, into.length);
            readWaiters.set(ticket, { into, resolve, reject });
          }),
        close: () => void call("stream.close", [s.id]),
      };
      return stream;
    }),
};

const readWaiters = new Map<number, { into: Uint8Array; resolve: (n: number) => void; reject: (e: Error) => void }>();

const mqttHandlers: ((topic: string, payload: string) => void)[] = [];
const mqtt: MqttPort = {
  connect: (subscriptions) => later(() => void call("mqtt.connect", [subscriptions])),
  connected: () => value<boolean>("mqtt.connected"),
  publish: (topic, payload) => later(() => void call("mqtt.publish", [topic, payload])),
  onMessage: (handler) => void mqttHandlers.push(handler),
  close: () => later(() => void call("mqtt.close")),
};

const timers = new Map<number, () => void>();
let nextTimer = 1;
const clock: ClockPort = {
  now: () => value<number>("clock.now"),
  setTimeout(fn, ms) {
    const id = nextTimer++;
    timers.set(id, fn);
    call("clock.setTimeout", [id, ms]);
    return id;
  },
  clearTimeout(handle) {
    if (timers.delete(handle as number)) call("clock.clearTimeout", [handle]);
  },
  random: () => value<number>("clock.random"),
};

function rawFlash(): RawFlashPort {
  const geometry = value<{ size: number; sectorSize: number }>("raw.geometry");
  return {
    size: geometry.size,
    sectorSize: geometry.sectorSize,
    read: (offset, into) => copyInto(into, call("raw.read", [offset, into.length]).tail),
    write: (offset, bytes) => void call("raw.write", [offset], bytes),
    eraseSector: (index) => void call("raw.eraseSector", [index]),
  };
}

/** Hooks (self-test checks, update commands) run on the host; their answers come back as pushes. */
const hookWaiters = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
function hookProxy(kind: string, name: string) {
  return (...args: unknown[]) =>
    new Promise<never>((resolve, reject) => {
      const ticket = value<number>("hook.start", kind, name, args);
      hookWaiters.set(ticket, { resolve: resolve as (v: unknown) => void, reject });
    });
}

let agent: Agent | null = null;

function ports(withMqtt: boolean): Ports {
  ota.chipId = value<number>("ota.chipId");
  return {
    ota,
    http,
    ...(withMqtt ? { mqtt } : {}),
    hash: {
      sha256() {
        const id = value<number>("hash.create");
        return {
          update: (bytes) => void call("hash.update", [id], bytes),
          digest: () => call("hash.digest", [id]).tail ?? new Uint8Array(0),
        };
      },
    },
    storage: new JournalStore(rawFlash()),
    clock,
    restart: { restart: (reason) => void call("restart", [reason]) },
    log: { log: (level, message, fields) => void call("log", [level, message, fields ?? null]) },
  };
}

type WireConfig = Omit<AgentConfig, "selfTests" | "commands"> & { selfTests: string[]; commands: string[]; hasMqtt: boolean };

function run(push: PushHeader, tail: Uint8Array | undefined) {
  if ("readDone" in push) {
    const w = readWaiters.get(push.readDone);
    readWaiters.delete(push.readDone);
    if (push.error !== undefined) w?.reject(new Error(push.error));
    else {
      copyInto(w!.into, tail);
      w?.resolve(push.n);
    }
  } else if ("fire" in push) {
    const fn = timers.get(push.fire);
    timers.delete(push.fire);
    fn?.();
  } else if ("mqtt" in push) {
    for (const h of mqttHandlers) h(push.mqtt[0], push.mqtt[1]);
  } else if ("hookDone" in push) {
    const w = hookWaiters.get(push.hookDone);
    hookWaiters.delete(push.hookDone);
    if (push.error !== undefined) w?.reject(new Error(push.error));
    else w?.resolve(push.ok);
  } else if (push.run === "start") {
    const c = push.config as WireConfig;
    const selfTests = Object.fromEntries(c.selfTests.map((n) => [n, hookProxy("selfTest", n)]));
    const commands = Object.fromEntries(c.commands.map((n) => [n, hookProxy("command", n)]));
    agent = new Agent({ ...c, selfTests, commands }, ports(c.hasMqtt));
    agent.start(push.options).then(
      (outcome) => call("done", ["start", outcome]),
      (e) => call("done", ["start", null, errorText(e)]),
    );
  } else if (push.run === "check") {
    agent!.checkNow().then(
      (outcome) => call("done", ["check", outcome]),
      (e) => call("done", ["check", null, errorText(e)]),
    );
  } else if (push.run === "stop") {
    void agent?.stop();
  } else if (push.run === "bench") {
    bench(push.what, push.args).then(
      (result) => call("done", ["bench", result]),
      (e) => call("done", ["bench", null, errorText(e)]),
    );
  }
}

/** Baselines for `npm run bench`. The copy loop is what the agent's download would be with nothing but the
 * chunk moves: the same port adapters (asynchronous reads into one buffer, the same flash writes). */
async function bench(what: string, args: unknown[]): Promise<unknown> {
  if (what === "copy") {
    const [url, headers, slot, size, chunk] = args as [string, Record<string, string>, Slot, number, number];
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
  if (what === "verify") {
    const [body, keys] = args as [string, TrustedKey[]];
    verifySignature(parseEnvelope(body)!, keys);
    return true;
  }
  throw new Error(`unknown bench ${what}`);
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

(globalThis as unknown as { handleCommand: (m: ArrayBuffer) => ArrayBuffer }).handleCommand = (message) => {
  const m = decodeMessage(new Uint8Array(message));
  run(m.header as PushHeader, m.tail);
  return new ArrayBuffer(0);
};
