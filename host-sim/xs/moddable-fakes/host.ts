// Runs in XS: how the fakes reach their Node host (xsnap's issueCommand), and the host's pushes back in
// (a timer fired, TCP bytes arrived, an async call finished, a run to start). Only the fakes use it: the
// device/esp32 adapters above them are unmodified and know nothing of a host.
import type { WireError } from "../bridge";
import { readError } from "../bridge";
import type { Codec } from "../codec";
import { ByteReader, ByteWriter } from "../codec";
import type { FakeArgs, FakeAsyncCall, FakeResult, FakeSyncCall } from "./calls";
import { FAKE_OPCODE, FAKE_PUSH, fakeSpec } from "./calls";

declare const issueCommand: (message: ArrayBuffer) => ArrayBuffer;

const out = new ByteWriter();

function toError(e: WireError): Error {
  const err = new Error(e.message);
  if (e.name !== "Error") err.name = e.name;
  return err;
}

export function hostCall<K extends FakeSyncCall>(name: K, ...args: FakeArgs<K>): FakeResult<K> {
  const spec = fakeSpec(name);
  out.reset().u16(FAKE_OPCODE[name]);
  spec.args.write(out, args);
  const r = new ByteReader(issueCommand(out.take()));
  if (r.u8() !== 0) throw toError(readError(r));
  return spec.result.read(r);
}

const pending = new Map<number, { codec: Codec<unknown>; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextTicket = 1;

/** A call the host answers later, matched by ticket. */
export function hostCallAsync<K extends FakeAsyncCall>(name: K, ...args: FakeArgs<K>): Promise<FakeResult<K>> {
  const spec = fakeSpec(name);
  const ticket = nextTicket++;
  out.reset().u16(FAKE_OPCODE[name]);
  out.u32(ticket);
  spec.args.write(out, args);
  return new Promise<FakeResult<K>>((resolve, reject) => {
    pending.set(ticket, { codec: spec.result as Codec<unknown>, resolve: resolve as (v: unknown) => void, reject });
    const r = new ByteReader(issueCommand(out.take()));
    if (r.u8() !== 0) {
      pending.delete(ticket);
      reject(toError(readError(r)));
    }
  });
}

type PushHandler = (r: ByteReader) => void;
const handlers = new Map<number, PushHandler>();

/** The fake that owns a kind of push registers for it (the timer for `fire`, TCP for `tcp`, the entry for `run`). */
export function onPush(kind: number, handler: PushHandler) {
  handlers.set(kind, handler);
}

onPush(FAKE_PUSH.complete, (r) => {
  const ticket = r.u32();
  const waiter = pending.get(ticket);
  pending.delete(ticket);
  if (r.u8() === 0) waiter?.resolve(waiter.codec.read(r));
  else waiter?.reject(toError(readError(r)));
});

(globalThis as unknown as { handleCommand: (m: ArrayBuffer) => ArrayBuffer }).handleCommand = (message) => {
  const r = new ByteReader(message);
  handlers.get(r.u8())?.(r);
  return new ArrayBuffer(0);
};

export { ByteWriter };
