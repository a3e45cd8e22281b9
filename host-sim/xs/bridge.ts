// The one table of calls between the agent in XS and its Node host. Each entry names a port method, its
// argument and result codecs, and whether the host answers later (the method returns a promise on the
// agent's side). The XS adapters (xs-entry.ts) and the host's handlers (xs-agent.ts) are both typed from
// it: a call missing on either side does not compile. Opcodes are table positions, so nothing is kept in
// sync by hand.
//   call:     [u16 opcode][u32 ticket, async calls only][args]; with a chunk argument the opcode has BULK_FLAG
//             set and the chunk follows as the next message, by itself
//   reply:    [u8 0][result]  |  [u8 1][error]              (sync calls; async ones reply [u8 0] at once)
//   push:     [u8 kind][...]  host → XS: a timer fired, an MQTT message, an async call completed, a run
import type { DeferHook, Deferral } from "../../device/core/config";
import type { AppDescription, HttpRequest, HttpResponse, ImageState, LogLevel, Slot } from "../../device/core/ports";
import type { ByteReader, ByteWriter, Codec } from "./codec";
import { bool, bulk, bytes, f64, json, none, nullable, oneOf, str, tuple, u32 } from "./codec";

export interface CallSpec<A extends unknown[], R, Async extends boolean = boolean> {
  args: Codec<A>;
  result: Codec<R>;
  /** The host answers with a completion push matched by ticket (the agent's side gets a promise). */
  async: Async;
}

const sync = <A extends unknown[], R>(args: Codec<A>, result: Codec<R>): CallSpec<A, R, false> => ({ args, result, async: false });
const later = <A extends unknown[], R>(args: Codec<A>, result: Codec<R>): CallSpec<A, R, true> => ({ args, result, async: true });

const IMAGE_STATES: readonly ImageState[] = ["new", "pending_verify", "valid", "invalid", "aborted", "undefined", "none"];
const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];
const slot: Codec<Slot> = {
  write: (w, s) => (w.str(s.label), w.u32(s.subtype), w.u32(s.size)),
  read: (r) => ({ label: r.str(), subtype: r.u32(), size: r.u32() }),
};
/** A handle the host keeps for the agent (an open slot, a stream, a hash), with what the agent must know of it. */
const handle = tuple<[number, number]>(u32, u32);
const headers = json<Record<string, string>>();
type DeferOffer = Parameters<DeferHook>[0];

export const CALLS = {
  "ota.chipId": sync(tuple(), u32),
  "ota.running": sync(tuple(), slot),
  "ota.nextUpdate": sync(tuple(), nullable(slot)),
  "ota.other": sync(tuple(), nullable(slot)),
  "ota.state": sync(tuple<[Slot]>(slot), oneOf(IMAGE_STATES)),
  "ota.description": sync(tuple<[Slot]>(slot), json<AppDescription | null>()),
  "ota.read": sync(tuple<[Slot, number, number]>(slot, u32, u32), bytes),
  /** → [writer id, bytes already written] */
  "ota.begin": sync(tuple<[Slot, number]>(slot, u32), handle),
  "ota.resume": sync(tuple<[Slot, number]>(slot, u32), handle),
  "ota.setBoot": sync(tuple<[Slot]>(slot), none),
  "ota.markValid": sync(tuple(), none),
  "ota.markInvalid": sync(tuple(), none),
  "ota.rollbackPossible": sync(tuple(), bool),
  "writer.write": sync(tuple<[number, Uint8Array]>(u32, bulk), none),
  "writer.end": sync(tuple<[number]>(u32), none),
  "writer.abort": sync(tuple<[number]>(u32), none),
  "http.request": later(tuple<[HttpRequest]>(json<HttpRequest>()), json<HttpResponse>()),
  /** → [stream id, status, headers] */
  "http.stream": later(tuple<[string, Record<string, string>, number]>(str, headers, u32), tuple<[number, number, Record<string, string>]>(u32, u32, headers)),
  /** Up to n bytes; empty at the end of the body. */
  "stream.read": later(tuple<[number, number]>(u32, u32), bytes),
  "stream.close": sync(tuple<[number]>(u32), none),
  "mqtt.connect": later(tuple<[string[]]>(json<string[]>()), none),
  "mqtt.connected": sync(tuple(), bool),
  "mqtt.publish": later(tuple<[string, string]>(str, str), none),
  "mqtt.close": later(tuple(), none),
  "hash.create": sync(tuple(), u32),
  "hash.update": sync(tuple<[number, Uint8Array]>(u32, bulk), none),
  "hash.digest": sync(tuple<[number]>(u32), bytes),
  /** The chip's native ed25519 (device/esp32/native); the host's here. */
  "hash.verifyEd25519": sync(tuple<[Uint8Array, Uint8Array, Uint8Array]>(bytes, bytes, bytes), bool),
  /** The chip's ECDSA P-256 (device/esp32/native/p256.c, mbedTLS); the host's (Node's crypto) here. */
  "verify.p256": sync(tuple<[Uint8Array, Uint8Array, Uint8Array]>(bytes, bytes, bytes), bool),
  "raw.geometry": sync(tuple(), tuple<[number, number]>(u32, u32)),
  "raw.read": sync(tuple<[number, number]>(u32, u32), bytes),
  "raw.write": sync(tuple<[number, Uint8Array]>(u32, bulk), none),
  "raw.eraseSector": sync(tuple<[number]>(u32), none),
  "clock.now": sync(tuple(), f64),
  "clock.random": sync(tuple(), f64),
  /** The agent keeps the callback; the host pushes `fire` with the id. */
  "clock.setTimeout": sync(tuple<[number, number]>(u32, f64), none),
  "clock.clearTimeout": sync(tuple<[number]>(u32), none),
  /** An application hook (self-test check, update command) of the host's configuration. */
  "hook.run": later(tuple<[string, string, unknown[]]>(str, str, json<unknown[]>()), json<unknown>()),
  /** The application's deferUpdate hook (busy until…, or null), when the host's configuration has one. */
  "hook.defer": later(tuple<[DeferOffer]>(json<DeferOffer>()), json<Deferral | null>()),
  /** An application metric's current value (config.metrics, read for each health report). */
  "hook.metric": sync(tuple<[string]>(str), f64),
  /** The application's clockTrusted hook (is the clock synced?), when the host's configuration has one. */
  "hook.clockTrusted": sync(tuple(), bool),
  "restart": sync(tuple<[string]>(str), none),
  "log": sync(tuple<[LogLevel, string, Record<string, string | number | boolean | null> | null]>(oneOf(LOG_LEVELS), str, json()), none),
  /** The agent finished a run the host asked for (push `run`): [run ticket, result or error]. */
  "run.done": sync(tuple<[number, boolean, string]>(u32, bool, str), none),
} satisfies Record<string, CallSpec<any[], unknown>>; // any arity

export type CallName = keyof typeof CALLS;
export type ArgsOf<K extends CallName> = (typeof CALLS)[K] extends CallSpec<infer A, infer _R, boolean> ? A : never;
export type ResultOf<K extends CallName> = (typeof CALLS)[K] extends CallSpec<infer _A, infer R, boolean> ? R : never;
export type SyncCall = { [K in CallName]: (typeof CALLS)[K]["async"] extends false ? K : never }[CallName];
export type AsyncCall = Exclude<CallName, SyncCall>;

/** The table entry of one call, typed by its name. */
export function specOf<K extends CallName>(name: K): CallSpec<ArgsOf<K>, ResultOf<K>> {
  return CALLS[name] as unknown as CallSpec<ArgsOf<K>, ResultOf<K>>;
}

export const CALL_NAMES = Object.keys(CALLS) as CallName[];
export const OPCODE = Object.fromEntries(CALL_NAMES.map((n, i) => [n, i])) as Record<CallName, number>;

/** Set in a call's opcode when its chunk argument follows as a message of its own. */
export const BULK_FLAG = 0x8000;

/** What the host pushes into the worker. */
export const PUSH = { fire: 1, mqtt: 2, complete: 3, run: 4 } as const;

export interface WireError {
  name: string;
  message: string;
  /** OtaPortError's ESP-IDF error name. */
  espName: string;
}

export function writeError(w: ByteWriter, e: unknown) {
  const err = e as Error & { espName?: string };
  w.str(err?.name ?? "Error");
  w.str(String(err?.message ?? e));
  w.str(err?.espName ?? "");
}

export function readError(r: ByteReader): WireError {
  return { name: r.str(), message: r.str(), espName: r.str() };
}
