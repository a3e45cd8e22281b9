// Applies a delta patch as it streams in (DELTA.md): COPY reads the old image from the running slot, INSERT
// takes the patch's own bytes, and the result goes through one sector-sized buffer into the inactive slot,
// hashed as it is written. At each durable sector the reader's position is persisted with the offset, so
// after a reboot the slot resumes there and the patch is asked for with Range from that position.
import type { PatchOutput, PatchPosition } from "../protocol/delta";
import { OP_END, PatchFormatError, PatchReader } from "../protocol/delta";
import type { DeltaOffer, UpdateManifest } from "../protocol/manifest";
import type { AgentContext } from "./context";
import type { DownloadHooks, SlotWrite } from "./download";
import { Downloader, SECTOR } from "./download";
import { UpdateError } from "./failures";
import type { Slot } from "./ports";
import type { Signal } from "./signal";
import type { Downloading } from "./state";

export const PATCH_START: PatchPosition = { patchOffset: 0, opKind: OP_END, opLeft: 0, oldAt: 0 };

export class DeltaDownloader extends Downloader implements PatchOutput {
  private reader: PatchReader | null = null;
  private readonly out = new Uint8Array(SECTOR);
  private outFill = 0;
  /** Where the patch stood at the last persisted offset. */
  private position: PatchPosition;

  constructor(
    ctx: AgentContext,
    manifest: UpdateManifest,
    slot: Slot,
    cancel: Signal,
    hooks: DownloadHooks,
    private readonly delta: DeltaOffer,
    /** The running slot, whose image the patch starts from, and that image's length. */
    private readonly base: Slot,
    private readonly baseSize: number,
    /** Where the patch stood at the persisted offset (after a reboot). */
    from: PatchPosition | undefined,
  ) {
    super(ctx, manifest, slot, cancel, hooks);
    this.position = from ?? PATCH_START;
  }

  protected override get url() {
    return this.delta.patch_url;
  }

  /** The patch comes from the server itself; a failed delta ends in the full image instead (installer.ts). */
  protected override fallBack(): boolean {
    return false;
  }

  protected override get size() {
    return this.delta.patch_size;
  }

  /** Every byte fed to the reader is consumed: the patch offset is the bytes received. */
  protected override received() {
    return this.reader!.patchOffset;
  }

  protected override persistAt(offset: number, attempts: number) {
    this.hooks.persist(offset, attempts, offset === 0 ? PATCH_START : this.position);
  }

  protected override open(offset: number): SlotWrite {
    const resume = offset > 0 && offset % SECTOR === 0 && this.position.patchOffset > 0;
    if (!resume) this.position = PATCH_START;
    const current = super.open(resume ? offset : 0);
    // An ESP-IDF without esp_ota_resume begins the slot at zero instead (download.ts): then the patch starts over too.
    const resumed = resume && current.writer.written > 0;
    this.reader = new PatchReader(resumed ? this.base.size : this.baseSize, this.manifest.size, resumed ? this.position : undefined);
    this.outFill = 0;
    return current;
  }

  protected override flush(_current: SlotWrite, fill: number): Promise<unknown> | void {
    const piece = this.buffer.subarray(0, fill);
    try {
      this.reader!.feed(piece, this);
    } catch (e) {
      if (e instanceof PatchFormatError) throw new UpdateError("CHECKSUM_MISMATCH", `delta patch is corrupt: ${e.message}`);
      throw e;
    }
    return this.hooks.progress(this.reader!.patchOffset, this.delta.patch_size);
  }

  protected override verify(current: SlotWrite) {
    this.writeOut();
    const written = current.writer.written;
    if (!this.reader!.ended) throw new UpdateError("CHECKSUM_MISMATCH", "delta patch ended without its end mark");
    if (written !== this.manifest.size) throw new UpdateError("CHECKSUM_MISMATCH", `delta patch built ${written} of ${this.manifest.size} bytes`);
    // The image's SHA-256 decides (a corrupt patch cannot build the signed image). The patch's own SHA-256
    // names it in the manifest but is not hashed here: a second hash object costs ~26 XS slots (DELTA.md).
    super.verify(current);
  }

  room() {
    return this.out.length - this.outFill;
  }

  copy(from: number, length: number) {
    this.fits(length);
    this.ctx.ports.ota.read(this.base, from, this.out.subarray(this.outFill, this.outFill + length));
    this.outFill += length;
  }

  insert(bytes: Uint8Array) {
    this.fits(bytes.length);
    this.out.set(bytes, this.outFill);
    this.outFill += bytes.length;
  }

  /** A full buffer ends on a sector: write it, and persist where the patch stands every `persistEvery` bytes. */
  settled() {
    if (this.outFill < this.out.length) return;
    this.writeOut();
    const written = this.current!.writer.written;
    if (written - this.persisted >= this.ctx.config.persistEvery) {
      this.persisted = written;
      this.position = this.reader!.position();
      this.persistAt(written, 0);
    }
  }

  private fits(length: number) {
    if (this.current!.writer.written + this.outFill + length > this.manifest.size) throw new PatchFormatError(`patch builds more than the image's ${this.manifest.size} bytes`);
  }

  private writeOut() {
    if (this.outFill === 0) return;
    const piece = this.out.subarray(0, this.outFill);
    const { writer, sha } = this.current!;
    sha.update(piece);
    writer.write(piece);
    this.outFill = 0;
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

/** The download of the update: the patch through a DeltaDownloader when the delta is taken, else the image. */
export function newDownloader(ctx: AgentContext, s: Downloading, slot: Slot, cancel: Signal, hooks: DownloadHooks, baseSize: number): Downloader {
  const d = s.manifest.delta;
  if (!s.delta || !d) return new Downloader(ctx, s.manifest, slot, cancel, hooks);
  return new DeltaDownloader(ctx, s.manifest, slot, cancel, hooks, d, ctx.ports.ota.running(), baseSize, s.offset > 0 ? s.delta : undefined);
}
