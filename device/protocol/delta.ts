// The delta patch format (DELTA.md): a header, then COPY-from-the-old-image and INSERT-literal operations,
// read front to back with no random access to the patch. The reader is a resumable state machine that hands
// out at most `room()` bytes at a time, so the device can snapshot it at any output sector and resume there.

export const PATCH_MAGIC = [0x4f, 0x44, 0x50, 0x31]; // "ODP1"
export const PATCH_HEADER_SIZE = 12;
export const OP_END = 0;
export const OP_COPY = 1;
export const OP_INSERT = 2;

/** Where the reader stands between two outputs: enough to resume the patch from `patchOffset` after a reboot. */
export interface PatchPosition {
  /** Patch bytes consumed. */
  patchOffset: number;
  /** OP_COPY or OP_INSERT while inside an operation, OP_END between operations. */
  opKind: number;
  /** Bytes of the current operation still to produce. */
  opLeft: number;
  /** For a COPY: the old image's offset of the next byte. */
  oldAt: number;
}

/** Where the rebuilt image goes. `room()` is never 0 when asked: the output flushes when full. */
export interface PatchOutput {
  room(): number;
  copy(oldOffset: number, length: number): void;
  insert(bytes: Uint8Array): void;
  /** Called after each output with the reader's exact position (a safe point to flush and persist). */
  settled(): void;
}

export class PatchFormatError extends Error {}

export class PatchReader {
  patchOffset = 0;
  opKind = OP_END;
  opLeft = 0;
  oldAt = 0;
  ended = false;
  // What is being read: the file header's size fields, or an operation header (its tag, first field, and the
  // varint so far). Plain numbers, no arrays: the device keeps this object alive through the whole apply.
  private tag = -1;
  private first = -1;
  private acc = 0;
  private shift = 0;

  /** `baseLimit` bounds COPY reads (the old image's length, or its slot's size after a resume). */
  constructor(private baseLimit: number, private readonly targetLimit: number, from?: PatchPosition) {
    if (from) {
      this.patchOffset = from.patchOffset;
      this.opKind = from.opKind;
      this.opLeft = from.opLeft;
      this.oldAt = from.oldAt;
    }
  }

  position(): PatchPosition {
    return { patchOffset: this.patchOffset, opKind: this.opKind, opLeft: this.opLeft, oldAt: this.oldAt };
  }

  /** Consumes all of `bytes`, producing output as operations complete. */
  feed(bytes: Uint8Array, out: PatchOutput): void {
    let i = 0;
    const n = bytes.length;
    while (i < n || (this.opKind === OP_COPY && this.opLeft > 0)) {
      if (this.opKind === OP_COPY) {
        const k = Math.min(this.opLeft, out.room());
        out.copy(this.oldAt, k);
        this.oldAt += k;
        this.opLeft -= k;
      } else if (this.opKind === OP_INSERT) {
        const k = Math.min(this.opLeft, out.room(), n - i);
        out.insert(bytes.subarray(i, i + k));
        i += k;
        this.patchOffset += k;
        this.opLeft -= k;
      } else {
        if (this.ended) throw new PatchFormatError(`bytes after the end of the patch at offset ${this.patchOffset}`);
        this.headerByte(bytes[i]!);
        i++;
        this.patchOffset++;
        continue;
      }
      if (this.opLeft === 0) this.opKind = OP_END;
      out.settled();
    }
  }

  private headerByte(b: number) {
    const at = this.patchOffset;
    if (at < PATCH_HEADER_SIZE) {
      if (at < 4) {
        if (b !== PATCH_MAGIC[at]) throw new PatchFormatError("not a delta patch (bad magic)");
        return;
      }
      // Two little-endian u32: the target's size, then the base's.
      this.acc += b * 2 ** (8 * (at % 4));
      if (at === 7) {
        if (this.acc !== this.targetLimit) throw new PatchFormatError(`patch builds ${this.acc} bytes, the image is ${this.targetLimit}`);
        this.acc = 0;
      } else if (at === 11) {
        if (this.acc > this.baseLimit) throw new PatchFormatError(`patch expects a ${this.acc}-byte base, this one has ${this.baseLimit}`);
        this.baseLimit = this.acc;
        this.acc = 0;
      }
      return;
    }
    if (this.tag < 0) {
      if (b === OP_END) this.ended = true;
      else if (b === OP_COPY || b === OP_INSERT) this.tag = b;
      else throw new PatchFormatError(`unknown operation ${b} at offset ${this.patchOffset}`);
      return;
    }
    if (this.shift > 28 && b > 0x0f) throw new PatchFormatError(`varint too large at offset ${this.patchOffset}`);
    this.acc += (b & 0x7f) * 2 ** this.shift;
    this.shift += 7;
    if (b & 0x80) return;
    const value = this.acc;
    this.acc = 0;
    this.shift = 0;
    if (this.tag === OP_COPY && this.first < 0) {
      this.first = value;
      return;
    }
    const len = this.tag === OP_COPY ? this.first : value;
    const from = this.tag === OP_COPY ? value : 0;
    if (len === 0) throw new PatchFormatError(`empty operation at offset ${this.patchOffset}`);
    if (this.tag === OP_COPY && from + len > this.baseLimit) throw new PatchFormatError(`COPY ${from}+${len} runs past the base (${this.baseLimit} bytes)`);
    this.opKind = this.tag;
    this.opLeft = len;
    this.oldAt = from;
    this.tag = -1;
    this.first = -1;
  }
}

/** Appends the encoding of an operation header to `out` (the server's writer; INSERT data follows it). */
export function encodeOp(out: number[], tag: number, length: number, oldOffset = 0): void {
  out.push(tag);
  varint(out, length);
  if (tag === OP_COPY) varint(out, oldOffset);
}

export function encodeHeader(targetSize: number, baseSize: number): Uint8Array {
  const h = new Uint8Array(PATCH_HEADER_SIZE);
  h.set(PATCH_MAGIC);
  const put = (o: number, v: number) => {
    for (let k = 0; k < 4; k++) h[o + k] = Math.floor(v / 2 ** (8 * k)) & 0xff;
  };
  put(4, targetSize);
  put(8, baseSize);
  return h;
}

function varint(out: number[], v: number) {
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}
