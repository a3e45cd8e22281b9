// The SHA-256 of the image in a slot, as the server knows it (the whole file): the device offers its running
// image's digest when it checks for updates, so the server can answer with a delta from it. Hashing a slot
// costs a read of the whole image, so each slot's digest is kept in storage: learned from the verified
// manifest when an image is installed, computed once for a factory image, forgotten when its slot is rewritten.
import { hexEncode } from "../protocol/base64";
import type { AgentContext } from "./context";
import type { OtaPort, Slot } from "./ports";

export interface ImageDigest {
  sha256: string;
  size: number;
}

const key = (slot: Slot) => `ota.image.${slot.label}`;
const SEGMENTS_MAX = 16;

/** The running image's digest, computed and stored the first time; null when the slot holds no app image. */
export function runningImageDigest(ctx: AgentContext): ImageDigest | null {
  const { ota, storage, hash } = ctx.ports;
  const slot = ota.running();
  const stored = /^([0-9a-f]{64}):(\d+)$/.exec(storage.get(key(slot)) ?? "");
  if (stored) return { sha256: stored[1]!, size: Number(stored[2]) };
  const scratch = new Uint8Array(ctx.config.chunkSize);
  const size = appImageLength(ota, slot, scratch);
  if (size === null) return null;
  const sha = hash.sha256();
  for (let at = 0; at < size; at += scratch.length) {
    const piece = scratch.subarray(0, Math.min(scratch.length, size - at));
    ota.read(slot, at, piece);
    sha.update(piece);
  }
  const digest = { sha256: hexEncode(sha.digest()), size };
  rememberImage(ctx, slot, digest);
  return digest;
}

export function rememberImage(ctx: AgentContext, slot: Slot, digest: ImageDigest) {
  ctx.ports.storage.set(key(slot), `${digest.sha256}:${digest.size}`);
}

/** Before a slot is erased: what was stored about it no longer holds. */
export function forgetImage(ctx: AgentContext, slot: Slot) {
  if (ctx.ports.storage.get(key(slot)) !== undefined) ctx.ports.storage.delete(key(slot));
}

/** Length of the ESP app image at the start of `slot` from its headers: segments, the checksum block padded
 * to 16 bytes, and the appended SHA-256 when the header says so. */
export function appImageLength(ota: OtaPort, slot: Slot, scratch: Uint8Array): number | null {
  const h = scratch.subarray(0, 24);
  ota.read(slot, 0, h);
  const count = h[1]!;
  if (h[0] !== 0xe9 || count === 0 || count > SEGMENTS_MAX) return null;
  const hashAppended = h[23] === 1;
  let at = 24;
  const seg = scratch.subarray(0, 8);
  for (let k = 0; k < count; k++) {
    if (at + 8 > slot.size) return null;
    ota.read(slot, at, seg);
    at += 8 + ((seg[4]! | (seg[5]! << 8) | (seg[6]! << 16)) + seg[7]! * 0x1000000);
  }
  const length = Math.ceil((at + 1) / 16) * 16 + (hashAppended ? 32 : 0);
  return length <= slot.size ? length : null;
}
