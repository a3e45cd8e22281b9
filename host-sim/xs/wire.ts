// The message format between the agent in an XS worker and its Node host: a JSON header and an optional
// binary tail, so flash chunks cross without base64. Platform-free: both sides use it.
//   [u32 LE header length][header: UTF-8 JSON][tail bytes]
import { utf8Decode, utf8Encode } from "../../device/protocol/utf8";

export interface Message {
  header: unknown;
  tail?: Uint8Array;
}

export function encodeMessage(header: unknown, tail?: Uint8Array): Uint8Array {
  const json = utf8Encode(JSON.stringify(header));
  const out = new Uint8Array(4 + json.length + (tail ? tail.length : 0));
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  if (tail) out.set(tail, 4 + json.length);
  return out;
}

export function decodeMessage(bytes: Uint8Array): Message {
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  const header = JSON.parse(utf8Decode(bytes.subarray(4, 4 + length)));
  const tail = bytes.subarray(4 + length);
  return tail.length > 0 ? { header, tail } : { header };
}

/** A call from the agent to a host port. */
export interface CallHeader {
  /** port.method, e.g. "ota.write" */
  call: string;
  args: unknown[];
}

/** The host's answer: a result or an error, named so the XS side can rebuild the right class. */
export type ReplyHeader = { ok: unknown } | { error: { name: string; message: string; espName?: string } };

/** What the host pushes into the worker. */
export type PushHeader =
  | { fire: number }
  | { mqtt: [string, string] }
  | { hookDone: number; ok?: unknown; error?: string }
  | { run: "start"; options: { poll?: boolean; mqtt?: boolean }; config: unknown }
  | { run: "check" }
  | { run: "stop" }
  | { run: "bench"; what: string; args: unknown[] };
