// A "minor change" of an app image, for delta figures and tests: the next version of the same app with a few
// functions rewritten, one grown by 512 bytes (the code after it moves), and a few strings changed. The
// code after it also changes one 32-bit address in every 256 bytes (literal pools pointing past the grown
// function, as a linker relocates them). The result is re-sealed (segment length, checksum, appended
// SHA-256) so the bootloader accepts it. A COPY/INSERT patch pays for each relocated word as a small literal.
import { createHash } from "node:crypto";
import { APP_DESC_OFFSET, imageChecksum } from "./app-image";

const FUNCTIONS_CHANGED = 6;
const STRINGS_CHANGED = 8;
const GROWTH = 512;
/** One relocated address per this many bytes of the code after the grown function. */
const LITERAL_POOL_EVERY = 256;

function xorshift(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

const u32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000;
const putU32 = (b: Uint8Array, o: number, v: number) => {
  for (let k = 0; k < 4; k++) b[o + k] = (v >>> (8 * k)) & 0xff;
};

/** `base` (an image from buildAppImage) as version `version` after a minor source change. */
export function minorChange(base: Uint8Array, version: string, seed = 1): Uint8Array {
  const rand = xorshift(seed);
  // Segments: [header offset, data length]; the last one is IROM (code).
  const segs: [number, number][] = [];
  let off = 24;
  for (let k = 0; k < base[1]!; k++) {
    segs.push([off, u32(base, off + 4)]);
    off += 8 + u32(base, off + 4);
  }
  const [iromHdr, iromLen] = segs[segs.length - 1]!;
  const [dromHdr, dromLen] = segs[0]!;
  const grownAt = iromHdr + 8 + (Math.floor(iromLen / 2) & ~3);
  const segEnd = off + GROWTH;
  const total = Math.ceil((segEnd + 1) / 16) * 16 + 32;
  const img = new Uint8Array(total);
  img.set(base.subarray(0, grownAt));
  for (let k = 0; k < GROWTH; k++) img[grownAt + k] = rand() & 0xff;
  img.set(base.subarray(grownAt, off), grownAt + GROWTH);
  putU32(img, iromHdr + 4, iromLen + GROWTH);
  for (let at = grownAt + GROWTH + 64; at + 4 <= off + GROWTH; at += LITERAL_POOL_EVERY) putU32(img, at, u32(img, at) + GROWTH);

  const scribble = (from: number, span: number, len: number) => {
    const at = from + (rand() % Math.max(1, span - len));
    for (let k = 0; k < len; k++) img[at + k] = rand() & 0xff;
  };
  const code = iromHdr + 8;
  for (let k = 0; k < FUNCTIONS_CHANGED; k++) scribble(code, iromLen, 64 + (rand() % 448));
  const rodata = APP_DESC_OFFSET + 1024; // past the app descriptor and the simulator's block
  for (let k = 0; k < STRINGS_CHANGED; k++) scribble(rodata, dromHdr + 8 + dromLen - rodata, 12 + (rand() % 28));

  // The app descriptor: version and the ELF's SHA-256.
  const desc = APP_DESC_OFFSET;
  img.fill(0, desc + 16, desc + 48);
  img.set(Buffer.from(version, "utf8"), desc + 16);
  img.set(createHash("sha256").update(`minor-change\0${version}\0${seed}`).digest(), desc + 144);

  // Re-seal: zero padding, the checksum of every segment's data, the SHA-256 of everything before it.
  img.fill(0, segEnd, total - 33);
  let sum = 0xef;
  let at = 24;
  for (let k = 0; k < img[1]!; k++) {
    const len = u32(img, at + 4);
    sum = imageChecksum(img.subarray(at + 8, at + 8 + len), sum);
    at += 8 + len;
  }
  img[total - 33] = sum;
  img.set(createHash("sha256").update(img.subarray(0, total - 32)).digest(), total - 32);
  return img;
}
