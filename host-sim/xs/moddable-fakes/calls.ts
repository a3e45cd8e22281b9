// The calls between the Moddable fakes (running in XS, under the real device/esp32 adapters) and their Node
// host, in the binary form of ../bridge.ts: [u16 opcode][u32 ticket, async calls only][args]; the reply is
// [u8 0][result] or [u8 1][error]. What the chip does in C or in its network stack the host does here: the
// simulator's esp_ota model, its flash, a real TCP socket to a loopback server, Node's SHA-256 and ed25519.
import type { AgentConfig } from "../../../device/core/config";
import type { CallSpec } from "../bridge";
import { bool, bytes, f64, json, none, str, tuple, u32 } from "../codec";

const sync = <A extends unknown[], R>(args: CallSpec<A, R>["args"], result: CallSpec<A, R>["result"]): CallSpec<A, R, false> => ({ args, result, async: false });
const later = <A extends unknown[], R>(args: CallSpec<A, R>["args"], result: CallSpec<A, R>["result"]): CallSpec<A, R, true> => ({ args, result, async: true });

export const FAKE_CALLS = {
  /** modTimerAdd: the host pushes `fire` with the id after ms. */
  "timer.set": sync(tuple<[number, number]>(u32, f64), none),
  "timer.clear": sync(tuple<[number]>(u32), none),
  /** modTimerDelayMS: blocks the machine. */
  "timer.delay": sync(tuple<[number]>(f64), none),
  "digest.create": sync(tuple<[string]>(str), u32),
  "digest.write": sync(tuple<[number, Uint8Array]>(u32, bytes), none),
  "digest.close": sync(tuple<[number]>(u32), bytes),
  "digest.reset": sync(tuple<[number]>(u32), none),
  "ed25519.verify": sync(tuple<[Uint8Array, Uint8Array, Uint8Array]>(bytes, bytes, bytes), bool),
  "p256.verify": sync(tuple<[Uint8Array, Uint8Array, Uint8Array]>(bytes, bytes, bytes), bool),
  /** esp_partition_find_first(DATA, ANY, label) → [size, erase size] */
  "flash.open": sync(tuple<[string]>(str), tuple<[number, number]>(u32, u32)),
  "flash.read": sync(tuple<[string, number, number]>(str, u32, u32), bytes),
  "flash.write": sync(tuple<[string, number, Uint8Array]>(str, u32, bytes), none),
  "flash.erase": sync(tuple<[string, number, number]>(str, u32, u32), none),
  /** lwIP's resolver: the address, or "" when the name does not resolve. */
  "net.resolve": later(tuple<[string]>(str), str),
  /** A TCP connection to address:port; the host pushes `tcp` events for it. */
  "tcp.open": sync(tuple<[string, number]>(str, u32), u32),
  /** → bytes writable after this write (tcp_sndbuf) */
  "tcp.write": sync(tuple<[number, Uint8Array]>(u32, bytes), u32),
  "tcp.close": sync(tuple<[number]>(u32), none),
  /** One espota.c host function by name, JSON in and out; an ESP-IDF failure is an error whose message starts
   * with the error name, as espota.c's throwEsp writes it. */
  "espota.call": sync(tuple<[string, unknown[]]>(str, json<unknown[]>()), json<unknown>()),
  "espota.read": sync(tuple<[string, number, number]>(str, u32, u32), bytes),
  "espota.write": sync(tuple<[Uint8Array]>(bytes), none),
  /** An application hook (a self-test check) of the host's configuration. */
  "hook.run": later(tuple<[string, unknown[]]>(str, json<unknown[]>()), json<unknown>()),
  /** trace(): the serial console. */
  "trace": sync(tuple<[string]>(str), none),
  "run.done": sync(tuple<[number, boolean, string]>(u32, bool, str), none),
} satisfies Record<string, CallSpec<any[], unknown>>; // any arity

export type FakeCallName = keyof typeof FAKE_CALLS;
export type FakeArgs<K extends FakeCallName> = (typeof FAKE_CALLS)[K] extends CallSpec<infer A, infer _R, boolean> ? A : never;
export type FakeResult<K extends FakeCallName> = (typeof FAKE_CALLS)[K] extends CallSpec<infer _A, infer R, boolean> ? R : never;
export type FakeSyncCall = { [K in FakeCallName]: (typeof FAKE_CALLS)[K]["async"] extends false ? K : never }[FakeCallName];
export type FakeAsyncCall = Exclude<FakeCallName, FakeSyncCall>;

export const FAKE_CALL_NAMES = Object.keys(FAKE_CALLS) as FakeCallName[];
export const FAKE_OPCODE = Object.fromEntries(FAKE_CALL_NAMES.map((n, i) => [n, i])) as Record<FakeCallName, number>;

export function fakeSpec<K extends FakeCallName>(name: K): CallSpec<FakeArgs<K>, FakeResult<K>> {
  return FAKE_CALLS[name] as unknown as CallSpec<FakeArgs<K>, FakeResult<K>>;
}

/** What the host pushes into the worker. */
export const FAKE_PUSH = { fire: 1, complete: 2, run: 3, tcp: 4 } as const;
/** Events of a TCP connection (push `tcp`: [u32 id][u8 event][bytes]). */
export const TCP_EVENT = { writable: 1, data: 2, error: 3 } as const;
/** lwIP's TCP_SND_BUF in ESP-IDF's default sdkconfig (CONFIG_LWIP_TCP_SND_BUF_DEFAULT): what tcp_sndbuf() says
 * of an idle connection. */
export const TCP_SNDBUF = 5744;

/** The agent's configuration as it crosses: functions stay on the host (self-tests by name). */
export type Esp32WireConfig = Omit<AgentConfig, "selfTests" | "commands" | "clockTrusted" | "deferUpdate" | "metrics"> & { selfTests: string[] };
