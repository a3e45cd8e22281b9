// The slot side of a download: opening (or resuming) the inactive slot, the full image's sink, and the final
// checks every image passes before it can be made bootable.
import { hexEncode } from "../protocol/base64";
import type { PatchPosition } from "../protocol/delta";
import type { UpdateManifest } from "../protocol/manifest";
import type { AgentContext } from "./context";
import type { BodySink, DurableProgress } from "./download";
import { SECTOR } from "./download";
import { UpdateError } from "./failures";
import type { OtaWriter, Sha256, Slot } from "./ports";
import { OtaPortError } from "./ports";

/** Begins the slot, or resumes it at a sector-aligned offset after re-hashing what flash already holds
 * (with `scratch` as the read buffer). Persists progress 0 before the first erase. */
export function openSlot(ctx: AgentContext, slot: Slot, imageSize: number, offset: number, scratch: Uint8Array, persist: (p: DurableProgress) => void, delta?: PatchPosition) {
  const { ota, hash } = ctx.ports;
  const sha = hash.sha256();
  const aligned = offset - (offset % SECTOR);
  if (aligned === 0) {
    // Persist before the erase: a reboot mid-erase must not resume into half-erased flash.
    persist({ offset: 0, delta });
  } else {
    for (let at = 0; at < aligned; at += scratch.length) {
      const piece = scratch.subarray(0, Math.min(scratch.length, aligned - at));
      ota.read(slot, at, piece);
      sha.update(piece);
    }
  }
  const writer = aligned === 0 ? ota.begin(slot, imageSize) : ota.resume(slot, aligned);
  return { writer, sha };
}

/** The image's SHA-256 against the manifest, then esp_ota_end's image verification. The handle is let go
 * of either way (esp_ota_end frees it whatever it answers). */
export function verifyImage(writer: OtaWriter, sha: Sha256, manifest: UpdateManifest) {
  const digest = hexEncode(sha.digest());
  if (digest !== manifest.sha256) {
    writer.abort();
    throw new UpdateError("CHECKSUM_MISMATCH", `SHA-256 ${digest} differs from the manifest's ${manifest.sha256}`);
  }
  try {
    writer.end();
  } catch (e) {
    if (e instanceof OtaPortError) throw new UpdateError("IMAGE_INVALID", `image failed verification: ${e.message}`);
    throw e;
  }
}

/** The full image, written to the slot as it arrives. */
export class ImageSink implements BodySink {
  private readonly writer: OtaWriter;
  private readonly sha: Sha256;
  private persisted: number;

  constructor(
    private readonly ctx: AgentContext,
    private readonly manifest: UpdateManifest,
    slot: Slot,
    offset: number,
    scratch: Uint8Array,
    private readonly persist: (p: DurableProgress) => void,
  ) {
    const { writer, sha } = openSlot(ctx, slot, manifest.size, offset, scratch, persist);
    this.writer = writer;
    this.sha = sha;
    this.persisted = writer.written;
  }

  get received() {
    return this.writer.written;
  }

  /** Hash and write; persist the offset each time it passed another `persistEvery` bytes. */
  take(piece: Uint8Array) {
    this.sha.update(piece);
    this.writer.write(piece);
    const written = this.writer.written;
    const size = this.manifest.size;
    const durable = written === size ? written : written - (written % SECTOR);
    if (durable - this.persisted >= this.ctx.config.persistEvery || written === size) {
      this.persisted = durable;
      this.persist({ offset: durable });
    }
  }

  finish() {
    verifyImage(this.writer, this.sha, this.manifest);
  }

  release() {
    this.writer.abort();
  }
}
