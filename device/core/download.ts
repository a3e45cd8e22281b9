// Streams an image into the inactive slot through one fixed buffer, hashing as it writes, resuming with
// Range from the last durably written offset after a network error or a reboot.
import { hexEncode } from "../protocol/base64";
import type { UpdateManifest } from "../protocol/manifest";
import type { ResolvedConfig } from "./config";
import type { HttpBodyStream, OtaWriter, Ports, Sha256, Slot } from "./ports";
import { OtaPortError } from "./ports";
import { backoffMs, sleep, TimeoutError, withTimeout } from "./timing";
import { UpdateError } from "./update-error";

const SECTOR = 4096;

export interface DownloadHooks {
  /** Persist the durable offset (a multiple of 4096) and attempt count before going on. */
  persist(offset: number, attempts: number): void;
  progress(bytes: number, total: number): void;
}

export interface DownloadResult {
  /** Bytes received over the network, all attempts included. */
  bytesFetched: number;
}

/** Thrown when the server ignored Range or the slot must be rewritten from zero. */
class RestartFromZero extends Error {}

export class Downloader {
  private readonly buffer: Uint8Array;
  private writer: OtaWriter | null = null;
  private sha: Sha256 | null = null;
  private persisted = 0;
  private bytesFetched = 0;

  constructor(
    private readonly ports: Ports,
    private readonly config: ResolvedConfig,
    private readonly manifest: UpdateManifest,
    private readonly slot: Slot,
    private readonly hooks: DownloadHooks,
  ) {
    this.buffer = new Uint8Array(config.chunkSize);
  }

  /** Downloads from `offset` (0, or where a previous boot left off) to the end, then verifies. */
  async run(offset: number, attempts: number): Promise<DownloadResult> {
    this.open(offset);
    // The furthest offset any attempt reached: only getting past it counts as progress, so a server whose
    // file ends early (or that keeps sending us back to zero) cannot keep the download going forever.
    let highWater = offset;
    for (;;) {
      try {
        await this.fetchRest();
        break;
      } catch (e) {
        if (e instanceof UpdateError || e instanceof OtaPortError) throw this.abort(e);
        // Attempts count failures in a row: a connection that got further than ever starts the count again.
        const progressed = this.writer!.written > highWater;
        highWater = Math.max(highWater, this.writer!.written);
        attempts = progressed ? 1 : attempts + 1;
        const message = e instanceof Error ? e.message : String(e);
        if (e instanceof RestartFromZero) {
          if (attempts >= this.config.maxDownloadAttempts) {
            throw this.abort(new UpdateError("DOWNLOAD_FAILED", `download failed after ${attempts} attempts: the server cannot resume past ${highWater} bytes`));
          }
          this.open(0);
          continue;
        }
        this.hooks.persist(this.persisted, attempts);
        this.ports.log.log("warn", "download interrupted", { update_id: this.manifest.update_id, offset: this.writer!.written, attempt: attempts, error: message });
        if (attempts >= this.config.maxDownloadAttempts) {
          throw this.abort(new UpdateError("DOWNLOAD_FAILED", `download failed after ${attempts} attempts: ${message}`));
        }
        await sleep(this.ports.clock, backoffMs(this.ports.clock, attempts - 1, this.config.retryBaseMs));
      }
    }
    this.verify();
    return { bytesFetched: this.bytesFetched };
  }

  /** Begins the slot, or resumes it at a sector-aligned offset after re-hashing what flash already holds. */
  private open(offset: number) {
    this.writer?.abort();
    const { ota, hash } = this.ports;
    this.sha = hash.sha256();
    const aligned = offset - (offset % SECTOR);
    if (aligned === 0) {
      // Persist before the erase: a reboot mid-erase must not resume into half-erased flash.
      this.hooks.persist(0, 0);
      this.writer = ota.begin(this.slot, this.manifest.size);
    } else {
      for (let at = 0; at < aligned; at += this.buffer.length) {
        const piece = this.buffer.subarray(0, Math.min(this.buffer.length, aligned - at));
        ota.read(this.slot, at, piece);
        this.sha.update(piece);
      }
      this.writer = ota.resume(this.slot, aligned);
    }
    this.persisted = aligned;
  }

  private async fetchRest() {
    const writer = this.writer!;
    const size = this.manifest.size;
    const start = writer.written;
    const headers: Record<string, string> = { "x-api-key": this.config.apiKey };
    if (start > 0) headers.range = `bytes=${start}-`;
    const { clock } = this.ports;
    const stallMs = this.config.stallTimeoutMs;
    const stream = await withTimeout(clock, this.ports.http.stream(this.manifest.download_url, headers, stallMs), stallMs, "download connect");
    // One watchdog per connection instead of a timer per read: it closes a stream that made no progress
    // for a whole period (so a stall is noticed within one to two periods), and costs nothing per chunk.
    let progressed = false;
    let stalled = false;
    const watchdog = () => {
      if (progressed) {
        progressed = false;
        timer = clock.setTimeout(watchdog, stallMs);
      } else {
        stalled = true;
        stream.close();
      }
    };
    let timer = clock.setTimeout(watchdog, stallMs);
    try {
      this.checkResponse(stream, start, size);
      let fill = 0;
      for (;;) {
        let n: number;
        try {
          n = await stream.read(this.buffer.subarray(fill));
        } catch (e) {
          throw stalled ? new TimeoutError("download read", stallMs) : e;
        }
        progressed = true;
        if (n === 0) break;
        this.bytesFetched += n;
        fill += n;
        if (writer.written + fill > size) throw new UpdateError("DOWNLOAD_FAILED", `server sent more than the manifest's ${size} bytes`);
        if (fill === this.buffer.length) {
          this.flush(fill);
          fill = 0;
        }
      }
      if (fill > 0) this.flush(fill);
      if (writer.written < size) throw new Error(stalled ? `download stalled for ${stallMs} ms` : `connection ended at ${writer.written} of ${size} bytes`);
    } finally {
      clock.clearTimeout(timer);
      stream.close();
    }
  }

  private checkResponse(stream: HttpBodyStream, start: number, size: number) {
    const length = stream.headers["content-length"];
    if (stream.status === 200) {
      if (start > 0) {
        // The server ignored Range: the only safe continuation is a clean restart of the slot.
        this.ports.log.log("warn", "server ignored Range; restarting from zero", { update_id: this.manifest.update_id });
        throw new RestartFromZero();
      }
      if (length !== undefined && Number(length) !== size) {
        throw new UpdateError("DOWNLOAD_FAILED", `Content-Length ${length} differs from the manifest's size ${size}`);
      }
      return;
    }
    if (stream.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(stream.headers["content-range"] ?? "");
      if (!m || Number(m[1]) !== start) throw new Error(`206 with Content-Range "${stream.headers["content-range"]}" does not start at ${start}`);
      if (m[3] !== "*" && Number(m[3]) !== size) throw new UpdateError("DOWNLOAD_FAILED", `Content-Range total ${m[3]} differs from the manifest's size ${size}`);
      if (length !== undefined && Number(length) !== size - start) {
        throw new UpdateError("DOWNLOAD_FAILED", `Content-Length ${length} differs from the ${size - start} bytes requested`);
      }
      return;
    }
    if (stream.status === 416) {
      // Unsatisfiable from where we are: start again from zero (a 416 to a request from zero is just an error).
      if (start === 0) throw new Error("server answered 416 to a request from byte 0");
      throw new RestartFromZero();
    }
    if (stream.status >= 500 || stream.status === 429) throw new Error(`server answered ${stream.status}`);
    throw new UpdateError("DOWNLOAD_FAILED", `download refused with HTTP ${stream.status}`);
  }

  /** Hash and write one buffer; persist the offset each time it passed another `persistEvery` bytes. */
  private flush(fill: number) {
    const piece = this.buffer.subarray(0, fill);
    this.sha!.update(piece);
    this.writer!.write(piece);
    const written = this.writer!.written;
    const durable = written === this.manifest.size ? written : written - (written % SECTOR);
    if (durable - this.persisted >= this.config.persistEvery || written === this.manifest.size) {
      this.persisted = durable;
      this.hooks.persist(durable, 0);
    }
    this.hooks.progress(written, this.manifest.size);
  }

  /** SHA-256 of the stream against the manifest, then esp_ota_end's image verification. */
  private verify() {
    const digest = hexEncode(this.sha!.digest());
    if (digest !== this.manifest.sha256) {
      throw this.abort(new UpdateError("CHECKSUM_MISMATCH", `SHA-256 ${digest} differs from the manifest's ${this.manifest.sha256}`));
    }
    try {
      this.writer!.end();
    } catch (e) {
      this.writer = null;
      if (e instanceof OtaPortError) throw new UpdateError("IMAGE_INVALID", `image failed verification: ${e.message}`);
      throw e;
    }
    this.writer = null;
  }

  private abort(e: Error): Error {
    this.writer?.abort();
    this.writer = null;
    if (e instanceof OtaPortError) return new UpdateError(e.espName === "ESP_ERR_OTA_VALIDATE_FAILED" ? "IMAGE_INVALID" : "FLASH_WRITE_FAILED", e.message);
    return e;
  }
}
