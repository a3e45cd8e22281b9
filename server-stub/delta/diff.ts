// Builds a delta patch (device/protocol/delta.ts, DELTA.md) from an old image to a new one, and checks it by
// applying it with the same reader the device uses. Matching is greedy over a hash of 16-byte windows of
// the old image: first the continuation of the last copy (code that only moved), then the hash candidate.
import type { PatchOutput } from "../../device/protocol/delta";
import { encodeHeader, encodeOp, OP_COPY, OP_END, OP_INSERT, PatchReader } from "../../device/protocol/delta";

const WINDOW = 16;
/** Shorter matches cost more in operation headers than they save. */
const MIN_COPY = 24;
const TABLE_BITS = 20;

function windowHash(b: Uint8Array, at: number): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < WINDOW; k += 4) {
    h ^= b[at + k]! | (b[at + k + 1]! << 8) | (b[at + k + 2]! << 16) | (b[at + k + 3]! << 24);
    h = Math.imul(h, 0x01000193);
  }
  return (h ^ (h >>> 15)) >>> (32 - TABLE_BITS);
}

function matchLength(a: Uint8Array, ai: number, b: Uint8Array, bi: number): number {
  let n = 0;
  while (ai + n < a.length && bi + n < b.length && a[ai + n] === b[bi + n]) n++;
  return n;
}

/** The patch that rebuilds `target` from `base`. */
export function buildPatch(base: Uint8Array, target: Uint8Array): Uint8Array {
  // Last position of each window hash in the old image (one candidate per bucket is enough for images).
  const table = new Int32Array(1 << TABLE_BITS).fill(-1);
  for (let i = 0; i + WINDOW <= base.length; i++) table[windowHash(base, i)] = i;

  const chunks: Uint8Array[] = [encodeHeader(target.length, base.length)];
  let ops: number[] = [];
  let literalFrom = 0;
  const flushLiteral = (to: number) => {
    if (to > literalFrom) {
      encodeOp(ops, OP_INSERT, to - literalFrom);
      chunks.push(Uint8Array.from(ops), target.subarray(literalFrom, to));
      ops = [];
    }
  };
  let displacement = 0; // old offset minus new offset of the last copy
  let i = 0;
  while (i + WINDOW <= target.length) {
    let bestAt = -1;
    let bestLen = 0;
    const cont = i + displacement;
    if (cont >= 0 && cont < base.length) {
      bestLen = matchLength(base, cont, target, i);
      bestAt = cont;
    }
    if (bestLen < MIN_COPY) {
      const cand = table[windowHash(target, i)]!;
      if (cand >= 0) {
        const len = matchLength(base, cand, target, i);
        if (len > bestLen) (bestAt = cand), (bestLen = len);
      }
    }
    if (bestLen < MIN_COPY) {
      i++;
      continue;
    }
    // Grow the match backwards over literal bytes that also match.
    while (i > literalFrom && bestAt > 0 && base[bestAt - 1] === target[i - 1]) (i--, bestAt--, bestLen++);
    flushLiteral(i);
    encodeOp(ops, OP_COPY, bestLen, bestAt);
    displacement = bestAt - i;
    i += bestLen;
    literalFrom = i;
  }
  flushLiteral(target.length);
  ops.push(OP_END);
  chunks.push(Uint8Array.from(ops));
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const patch = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) (patch.set(c, at), (at += c.length));
  return patch;
}

/** Rebuilds the target from `base` and `patch` in memory with the device's reader, fed in `chunk`-byte pieces. */
export function applyPatch(base: Uint8Array, patch: Uint8Array, targetSize: number, chunk = 4096): Uint8Array {
  const out = new Uint8Array(targetSize);
  let at = 0;
  const reader = new PatchReader(base.length, targetSize);
  const sink: PatchOutput = {
    room: () => Math.max(1, targetSize - at),
    copy(from, length) {
      if (at + length > targetSize) throw new Error("patch overruns the target");
      out.set(base.subarray(from, from + length), at);
      at += length;
    },
    insert(bytes) {
      if (at + bytes.length > targetSize) throw new Error("patch overruns the target");
      out.set(bytes, at);
      at += bytes.length;
    },
    settled() {},
  };
  for (let p = 0; p < patch.length; p += chunk) reader.feed(patch.subarray(p, Math.min(patch.length, p + chunk)), sink);
  if (!reader.ended || at !== targetSize) throw new Error(`patch ended after ${at} of ${targetSize} bytes`);
  return out;
}

/** True when applying `patch` to `base` gives `target` byte for byte (the check before a patch is ever offered). */
export function patchRebuilds(base: Uint8Array, patch: Uint8Array, target: Uint8Array): boolean {
  try {
    const rebuilt = applyPatch(base, patch, target.length, 1000);
    return Buffer.compare(rebuilt, target) === 0;
  } catch {
    return false;
  }
}
