// Applies a delta patch as it streams in (DELTA.md): COPY reads the old image from the running slot, INSERT
// takes the patch's own bytes, and the result goes through one sector-sized buffer into the inactive slot,
// hashed as it is written. At each durable sector the reader's position is persisted with the offset, so
// after a reboot the slot resumes there and the patch is asked for with Range from that position.
import { hexEncode } from "../protocol/base64";
import type { PatchOutput, PatchPosition } from "../protocol/delta";
import { OP_END, PatchFormatError, PatchReader } from "../protocol/delta";
import type { DeltaOffer, UpdateManifest } from "../protocol/manifest";
import type { AgentContext } from "./context";
import type { BodySink, DownloadHooks, DurableProgress } from "./download";
import { Downloader, SECTOR } from "./download";
import { UpdateError } from "./failures";
import { ImageSink, openSlot, verifyImage } from "./image-sink";
import type { OtaWriter, Sha256, Slot } from "./ports";
import { runningImageDigest } from "./running-image";
import type { Signal } from "./signal";
import type { Downloading } from "./state";

export const PATCH_START: PatchPosition = { patchOffset: 0, opKind: OP_END, opLeft: 0, oldAt: 0 };

export class DeltaSink implements BodySink, PatchOutput {
  received: number;
  private readonly writer: OtaWriter;
  private readonly sha: Sha256;
  /** The patch's own hash; unknown after a resume across a reboot (the image's hash still decides). */
  private readonly patchSha: Sha256 | null;
  private readonly reader: PatchReader;
  private readonly out = new Uint8Array(SECTOR);
  private fill = 0;
  private persisted: number;

  constructor(
    private readonly ctx: AgentContext,
    private readonly manifest: UpdateManifest,
    private readonly delta: DeltaOffer,
    slot: Slot,
    /** The running slot, whose image the patch starts from, and that image's length (0 after a reboot: unknown). */
    private readonly base: Slot,
    baseSize: number,
    from: DurableProgress,
    scratch: Uint8Array,
    private readonly persist: (p: DurableProgress) => void,
  ) {
    const at = from.delta && from.offset > 0 && from.offset % SECTOR === 0 ? from.delta : null;
    const { writer, sha } = openSlot(ctx, slot, manifest.size, at ? from.offset : 0, scratch, persist, PATCH_START);
    this.writer = writer;
    this.sha = sha;
    this.persisted = writer.written;
    this.reader = new PatchReader(at ? base.size : baseSize, manifest.size, at ?? undefined);
    this.received = at ? at.patchOffset : 0;
    this.patchSha = at ? null : ctx.ports.hash.sha256();
  }

  take(bytes: Uint8Array) {
    this.patchSha?.update(bytes);
    this.received += bytes.length;
    try {
      this.reader.feed(bytes, this);
    } catch (e) {
      if (e instanceof PatchFormatError) throw new UpdateError("CHECKSUM_MISMATCH", `delta patch is corrupt: ${e.message}`);
      throw e;
    }
  }

  room() {
    return this.out.length - this.fill;
  }

  copy(from: number, length: number) {
    this.fits(length);
    this.ctx.ports.ota.read(this.base, from, this.out.subarray(this.fill, this.fill + length));
    this.fill += length;
  }

  insert(bytes: Uint8Array) {
    this.fits(bytes.length);
    this.out.set(bytes, this.fill);
    this.fill += bytes.length;
  }

  /** A full buffer ends on a sector: write it, and persist where the patch stands every `persistEvery` bytes. */
  settled() {
    if (this.fill < this.out.length) return;
    this.flush();
    const written = this.writer.written;
    if (written - this.persisted >= this.ctx.config.persistEvery) {
      this.persisted = written;
      this.persist({ offset: written, delta: this.reader.position() });
    }
  }

  finish() {
    this.flush();
    const fail = (why: string) => {
      this.writer.abort();
      return new UpdateError("CHECKSUM_MISMATCH", why);
    };
    if (!this.reader.ended) throw fail("delta patch ended without its end mark");
    if (this.writer.written !== this.manifest.size) throw fail(`delta patch built ${this.writer.written} of ${this.manifest.size} bytes`);
    const patchDigest = this.patchSha ? hexEncode(this.patchSha.digest()) : null;
    if (patchDigest !== null && patchDigest !== this.delta.patch_sha256) throw fail(`delta patch SHA-256 ${patchDigest} differs from the manifest's`);
    verifyImage(this.writer, this.sha, this.manifest);
  }

  release() {
    this.writer.abort();
  }

  private fits(length: number) {
    if (this.writer.written + this.fill + length > this.manifest.size) throw new PatchFormatError(`patch builds more than the image's ${this.manifest.size} bytes`);
  }

  private flush() {
    if (this.fill === 0) return;
    const piece = this.out.subarray(0, this.fill);
    this.sha.update(piece);
    this.writer.write(piece);
    this.fill = 0;
  }
}

/** Why this device will not apply the manifest's delta (it downloads the full image instead), or null. */
export function deltaRefusal(m: UpdateManifest, runningSha256: string | undefined): string | null {
  if (!m.delta) return null;
  if (!runningSha256) return "delta refused: the running image's SHA-256 is unknown";
  if (m.delta.base_sha256 !== runningSha256) {
    return `delta refused: the patch starts from image ${m.delta.base_sha256.slice(0, 12)}…, this device runs ${runningSha256.slice(0, 12)}…`;
  }
  return null;
}

/** What the first "downloading" report says about how the image comes. */
export function deliveryFields(s: Downloading, refused: string | null) {
  return s.delta ? { delivery: "delta" } : { delivery: "full", delivery_note: refused };
}

/** The download of the update's body: the patch through a DeltaSink, or the image through an ImageSink. */
export function newDownloader(ctx: AgentContext, s: Downloading, slot: Slot, cancel: Signal, hooks: DownloadHooks): Downloader {
  const m = s.manifest;
  const d = s.delta ? m.delta : null;
  if (!d) {
    const body = { url: m.download_url, size: m.size, updateId: m.update_id };
    return new Downloader(ctx, body, cancel, hooks, (from, persist, scratch) => new ImageSink(ctx, m, slot, from.offset, scratch, persist));
  }
  const base = ctx.ports.ota.running();
  const baseSize = runningImageDigest(ctx)?.size ?? base.size;
  const body = { url: d.patch_url, size: d.patch_size, updateId: m.update_id };
  return new Downloader(ctx, body, cancel, hooks, (from, persist, scratch) => new DeltaSink(ctx, m, d, slot, base, baseSize, from, scratch, persist));
}
