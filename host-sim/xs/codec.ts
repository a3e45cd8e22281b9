// Binary encoding of the bridge's messages (platform-free: XS and Node both run it). Each value is written
// with a codec; bytes cross as a length and a copy, never as JSON. Both XS (xsnap) and Node have
// TextEncoder/TextDecoder; strings are rare on the hot path (chunks, hashes and flash writes carry none).
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class ByteWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  pos = 0;
  /** A large byte argument (a chunk) that travels as a message of its own instead of being copied in. */
  bulk: Uint8Array | null = null;

  reset(): this {
    this.pos = 0;
    this.bulk = null;
    return this;
  }

  /** Overwrites a u16 already written (the opcode's "bulk follows" flag). */
  patchU16(at: number, v: number) {
    this.view.setUint16(at, v, true);
  }

  private room(n: number) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number) {
    this.room(1);
    this.buf[this.pos++] = v;
  }

  u16(v: number) {
    this.room(2);
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
  }

  u32(v: number) {
    this.room(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  f64(v: number) {
    this.room(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  bytes(b: Uint8Array) {
    this.u32(b.length);
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  str(s: string) {
    this.bytes(encoder.encode(s));
  }

  /** A copy of what was written (the message handed to the other side). */
  take(): ArrayBuffer {
    return this.buf.buffer.slice(0, this.pos) as ArrayBuffer;
  }
}

export class ByteReader {
  private readonly view: DataView;
  private readonly bytesView: Uint8Array;
  pos = 0;

  /** `bulk`: the message that carried this call's chunk, if it had one. */
  constructor(buffer: ArrayBuffer | Uint8Array, readonly bulk: Uint8Array | null = null) {
    this.bytesView = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
    this.view = new DataView(this.bytesView.buffer, this.bytesView.byteOffset, this.bytesView.byteLength);
  }

  u8(): number {
    return this.bytesView[this.pos++]!;
  }

  u16(): number {
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(): number {
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f64(): number {
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A view into the message (valid while the message is). */
  bytes(): Uint8Array {
    const n = this.u32();
    const b = this.bytesView.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  str(): string {
    return decoder.decode(this.bytes());
  }
}

export interface Codec<T> {
  write(w: ByteWriter, v: T): void;
  read(r: ByteReader): T;
}

export const none: Codec<void> = { write: () => {}, read: () => undefined };
export const u32: Codec<number> = { write: (w, v) => w.u32(v), read: (r) => r.u32() };
export const f64: Codec<number> = { write: (w, v) => w.f64(v), read: (r) => r.f64() };
export const bool: Codec<boolean> = { write: (w, v) => w.u8(v ? 1 : 0), read: (r) => r.u8() === 1 };
export const str: Codec<string> = { write: (w, v) => w.str(v), read: (r) => r.str() };
export const bytes: Codec<Uint8Array> = { write: (w, v) => w.bytes(v), read: (r) => r.bytes() };
/** A chunk sent as its own message: on the chip it is a native call reading the bytes in place, and a copy
 * into the call's message would cost the engine work per byte that the chip never does. At most one per call. */
export const bulk: Codec<Uint8Array> = {
  write: (w, v) => {
    w.bulk = v;
  },
  read: (r) => {
    if (!r.bulk) throw new Error("bridge: a bulk argument without its message");
    return r.bulk;
  },
};

/** Structured values that are not on the hot path (requests, slot descriptions, log fields). */
export function json<T>(): Codec<T> {
  return { write: (w, v) => w.str(JSON.stringify(v ?? null)), read: (r) => JSON.parse(r.str()) as T };
}

export function nullable<T>(c: Codec<T>): Codec<T | null> {
  return {
    write: (w, v) => (v === null ? w.u8(0) : (w.u8(1), c.write(w, v))),
    read: (r) => (r.u8() === 0 ? null : c.read(r)),
  };
}

type Codecs<T extends unknown[]> = { [K in keyof T]: Codec<T[K]> };

export function tuple<T extends unknown[]>(...codecs: Codecs<T>): Codec<T> {
  return {
    write: (w, v) => codecs.forEach((c, i) => (c as Codec<unknown>).write(w, v[i])),
    read: (r) => codecs.map((c) => (c as Codec<unknown>).read(r)) as T,
  };
}

export function oneOf<T extends string>(values: readonly T[]): Codec<T> {
  return { write: (w, v) => w.u8(values.indexOf(v)), read: (r) => values[r.u8()]! };
}
