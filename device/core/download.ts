// Streams an image into the inactive slot through one fixed buffer, hashing as it writes, resuming with
// Range from the last durably written offset after a network error or a reboot. A delta update
// (delta-apply.ts) is a subclass that fetches the patch instead and rebuilds the image from it.
import { hexEncode } from "../protocol/base64";
import type { PatchPosition } from "../protocol/delta";
import type { UpdateManifest } from "../protocol/manifest";
import type { AgentContext } from "./context";
import { checkResponse, DownloadSource, RestartFromZero } from "./download-source";
import { AbortedError, errorMessage, TransientError, UpdateError } from "./failures";
import type { HttpBodyStream, OtaWriter, Sha256, Slot } from "./ports";
import { OtaPortError } from "./ports";
import type { Signal } from "./signal";
import { backoffMs, sleep, TimeoutError } from "./timing";

export const SECTOR = 4096;

export interface DownloadHooks {
  /** Persist the durable offset (a multiple of 4096) and attempt count before going on; for a delta, where the patch stands there. */
  persist(offset: number, attempts: number, delta?: PatchPosition): void;
  /** A progress report to send: the download waits for it, so one network operation at a time holds memory. */
  progress(bytes: number, total: number): Promise<unknown> | void;
}

/** The open slot and the hash of what went into it. */
export interface SlotWrite {
  writer: OtaWriter;
  sha: Sha256;
}

export class Downloader extends DownloadSource {
  protected readonly buffer: Uint8Array;
  protected current: SlotWrite | null = null;
  protected persisted = 0;

  constructor(
    protected readonly ctx: AgentContext,
    manifest: UpdateManifest,
    protected readonly slot: Slot,
    /** The server's cancel of this update; the agent's lifetime is checked as well. */
    private readonly cancel: Signal,
    protected readonly hooks: DownloadHooks,
  ) {
    super(manifest);
    this.buffer = new Uint8Array(ctx.config.chunkSize);
  }

  /** Downloads from `offset` (0, or where a previous boot left off) to the end, then verifies. */
  async run(offset: number, attempts: number): Promise<void> {
    const { config, ports } = this.ctx;
    try {
      let current = this.open(offset);
      // The furthest offset any attempt reached: only getting past it counts as progress, so a server whose
      // file ends early (or that keeps sending us back to zero) cannot keep the download going forever.
      let highWater = this.received(current);
      for (;;) {
        try {
          await this.fetchRest(current);
          break;
        } catch (e) {
          const fellBack = this.fallBack(e, this.ctx.ports.log);
          if (!(e instanceof TransientError)) {
            if (fellBack) continue; // the CDN refused: the fallback at once, from where the slot is
            throw e;
          }
          const written = this.received(current);
          // Attempts count failures in a row: a connection that got further than ever starts the count again.
          attempts = written > highWater ? 1 : attempts + 1;
          highWater = Math.max(highWater, written);
          if (attempts >= config.maxDownloadAttempts) {
            const why = e instanceof RestartFromZero ? `the server cannot resume past ${highWater} bytes` : e.message;
            throw new UpdateError("DOWNLOAD_FAILED", `download failed after ${attempts} attempts: ${why}`);
          }
          if (e instanceof RestartFromZero) {
            current = this.open(0);
            continue;
          }
          this.persistAt(this.persisted, attempts);
          ports.log.log("warn", "download interrupted", { update_id: this.manifest.update_id, offset: written, attempt: attempts, error: e.message });
          await sleep(ports.clock, backoffMs(ports.clock, attempts - 1, config.retryBaseMs), this.ctx.lifetime, this.cancel);
          this.checkSignals();
        }
      }
      this.verify(current);
    } catch (e) {
      throw this.abort(e);
    }
  }

  /** The body's size: the image's (a delta fetches its patch). */
  protected get size() {
    return this.manifest.size;
  }

  /** Body bytes taken so far: where a reconnect resumes. */
  protected received(current: SlotWrite) {
    return current.writer.written;
  }

  protected persistAt(offset: number, attempts: number) {
    this.hooks.persist(offset, attempts);
  }

  /** Begins the slot, or resumes it at a sector-aligned offset after re-hashing what flash already holds. */
  protected open(offset: number): SlotWrite {
    this.releaseWriter();
    const { ota, hash } = this.ctx.ports;
    const sha = hash.sha256();
    const aligned = offset - (offset % SECTOR);
    if (aligned === 0) {
      // Persist before the erase: a reboot mid-erase must not resume into half-erased flash.
      this.persistAt(0, 0);
    } else {
      for (let at = 0; at < aligned; at += this.buffer.length) {
        const piece = this.buffer.subarray(0, Math.min(this.buffer.length, aligned - at));
        ota.read(this.slot, at, piece);
        sha.update(piece);
      }
    }
    const writer = aligned === 0 ? ota.begin(this.slot, this.manifest.size) : this.resumeOrNull(aligned);
    if (!writer) return this.open(0);
    this.current = { writer, sha };
    this.persisted = aligned;
    return this.current;
  }

  /** esp_ota_resume, or null on an ESP-IDF without it (before v5.5: espota.c says ESP_ERR_NOT_SUPPORTED), where
   * the slot is begun again from zero and the image downloaded from its start. */
  private resumeOrNull(offset: number) {
    try {
      return this.ctx.ports.ota.resume(this.slot, offset);
    } catch (e) {
      if (!(e instanceof OtaPortError && e.espName === "ESP_ERR_NOT_SUPPORTED")) throw e;
      this.ctx.ports.log.log("warn", "esp_ota_resume not supported: downloading again from the start", { offset });
      return null;
    }
  }

  private async fetchRest(current: SlotWrite) {
    const { clock } = this.ctx.ports;
    const size = this.size;
    const start = this.received(current);
    const stallMs = this.ctx.config.stallTimeoutMs;
    const stream = await this.connect(start, stallMs);
    // Cancel or stop closes the connection: the pending read rejects and checkSignals() says why.
    const close = () => stream.close();
    this.cancel.listen(close);
    this.ctx.lifetime.listen(close);
    // One watchdog per connection instead of a timer per read: it closes a stream that made no progress
    // for a whole period (so a stall is noticed within one to two periods), and costs nothing per chunk.
    let progressed = false;
    let reporting = false;
    let stalled = false;
    const watchdog = () => {
      if (progressed || reporting) {
        progressed = false;
        timer = clock.setTimeout(watchdog, stallMs);
      } else {
        stalled = true;
        stream.close();
      }
    };
    let timer = clock.setTimeout(watchdog, stallMs);
    try {
      checkResponse(stream, start, size, this.ctx.ports.log, this.manifest.update_id);
      let fill = 0;
      for (;;) {
        let n: number;
        try {
          n = await stream.read(this.buffer.subarray(fill));
        } catch (e) {
          this.checkSignals();
          throw stalled ? new TransientError(new TimeoutError("download read", stallMs).message) : new TransientError(errorMessage(e));
        }
        this.checkSignals();
        progressed = true;
        if (n === 0) break;
        fill += n;
        if (this.received(current) + fill > size) throw new UpdateError("DOWNLOAD_FAILED", `server sent more than the manifest's ${size} bytes`);
        if (fill === this.buffer.length) {
          const report = this.flush(current, fill);
          fill = 0;
          if (report) {
            // A progress report: one request in flight at a time (the stream waits in the socket meanwhile).
            reporting = true;
            await report;
            reporting = false;
            progressed = true;
            this.checkSignals();
          }
        }
      }
      if (fill > 0) await this.flush(current, fill);
      if (this.received(current) < size) throw new TransientError(stalled ? `download stalled for ${stallMs} ms` : `connection ended at ${this.received(current)} of ${size} bytes`);
    } finally {
      clock.clearTimeout(timer);
      this.cancel.off(close);
      this.ctx.lifetime.off(close);
      stream.close();
    }
  }

  /** Opens the connection within one stall period. */
  private connect(start: number, stallMs: number): Promise<HttpBodyStream> {
    const { clock } = this.ctx.ports;
    return new Promise<HttpBodyStream>((resolve, reject) => {
      let late = false;
      const timer = clock.setTimeout(() => {
        late = true;
        reject(new TransientError(new TimeoutError("download connect", stallMs).message));
      }, stallMs);
      this.ctx.client.download(this.url, start, stallMs).then(
        (s) => (late ? s.close() : (clock.clearTimeout(timer), resolve(s))),
        (e) => (clock.clearTimeout(timer), reject(e)),
      );
    });
  }

  private checkSignals() {
    this.ctx.lifetime.throwIfAborted();
    if (this.cancel.aborted) throw new UpdateError("CANCELLED", "the server cancelled this update");
  }

  /** Hash and write one buffer; persist the offset each time it passed another `persistEvery` bytes. */
  protected flush({ writer, sha }: SlotWrite, fill: number): Promise<unknown> | void {
    const piece = this.buffer.subarray(0, fill);
    sha.update(piece);
    writer.write(piece);
    const written = writer.written;
    const durable = written === this.manifest.size ? written : written - (written % SECTOR);
    if (durable - this.persisted >= this.ctx.config.persistEvery || written === this.manifest.size) {
      this.persisted = durable;
      this.persistAt(durable, 0);
    }
    return this.hooks.progress(written, this.manifest.size);
  }

  /** SHA-256 of the stream against the manifest, then esp_ota_end's image verification. */
  protected verify({ writer, sha }: SlotWrite) {
    const digest = hexEncode(sha.digest());
    if (digest !== this.manifest.sha256) {
      throw new UpdateError("CHECKSUM_MISMATCH", `SHA-256 ${digest} differs from the manifest's ${this.manifest.sha256}`);
    }
    this.current = null; // esp_ota_end frees the handle whatever it answers
    try {
      writer.end();
    } catch (e) {
      if (e instanceof OtaPortError) throw new UpdateError("IMAGE_INVALID", `image failed verification: ${e.message}`);
      throw e;
    }
  }

  /** Lets go of the slot's handle and says what the failure means (flash errors get their own codes). */
  private abort(e: unknown): unknown {
    this.releaseWriter();
    if (e instanceof OtaPortError) return new UpdateError(e.espName === "ESP_ERR_OTA_VALIDATE_FAILED" ? "IMAGE_INVALID" : "FLASH_WRITE_FAILED", e.message);
    return e;
  }

  private releaseWriter() {
    const w = this.current?.writer;
    this.current = null;
    try {
      w?.abort();
    } catch (e) {
      if (!(e instanceof AbortedError)) throw e;
    }
  }
}
