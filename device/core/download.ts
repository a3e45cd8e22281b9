// Streams a body (the image, or a delta patch) through one fixed buffer into a sink that writes the
// inactive slot, resuming with Range after a network error or, from the journal, after a reboot.
import type { PatchPosition } from "../protocol/delta";
import type { AgentContext } from "./context";
import { AbortedError, errorMessage, TransientError, UpdateError } from "./failures";
import type { HttpBodyStream } from "./ports";
import { OtaPortError } from "./ports";
import type { Signal } from "./signal";
import { backoffMs, sleep, TimeoutError } from "./timing";

export const SECTOR = 4096;

/** What is durably in flash: image bytes (a multiple of 4096 until the end) and, for a delta, the patch's position there. */
export interface DurableProgress {
  offset: number;
  delta?: PatchPosition | undefined;
}

export interface DownloadHooks {
  /** Persist the durable progress and attempt count before going on. */
  persist(progress: DurableProgress, attempts: number): void;
  progress(bytes: number, total: number): void;
}

/** Where the body's bytes go: the slot itself (ImageSink), or a patch applier rebuilding the image (delta-apply.ts). */
export interface BodySink {
  /** Body bytes taken so far: a reconnect asks for the rest from here. */
  readonly received: number;
  take(bytes: Uint8Array): void;
  /** The whole body arrived: check what was built against the manifest, then esp_ota_end. */
  finish(): void;
  /** Lets go of the slot's handle (esp_ota_abort). */
  release(): void;
}

/** Opens a sink at durable progress (offset 0: from scratch, persisted before the first erase). */
export type SinkOpener = (from: DurableProgress, persist: (p: DurableProgress) => void, scratch: Uint8Array) => BodySink;

/** The server ignored Range, or cannot resume from here: the slot must be rewritten from zero. */
class RestartFromZero extends TransientError {}

export class Downloader {
  private readonly buffer: Uint8Array;
  private current: BodySink | null = null;
  private durable: DurableProgress = { offset: 0 };

  constructor(
    private readonly ctx: AgentContext,
    /** The body: the image's or the patch's URL and size. */
    private readonly body: { url: string; size: number; updateId: string },
    /** The server's cancel of this update; the agent's lifetime is checked as well. */
    private readonly cancel: Signal,
    private readonly hooks: DownloadHooks,
    private readonly openSink: SinkOpener,
  ) {
    this.buffer = new Uint8Array(ctx.config.chunkSize);
  }

  /** Downloads from `from` (offset 0, or where a previous boot left off) to the end, then verifies. */
  async run(from: DurableProgress, attempts: number): Promise<void> {
    const { config, ports } = this.ctx;
    try {
      let current = this.open(from);
      // The furthest body offset any attempt reached: only getting past it counts as progress, so a server whose
      // file ends early (or that keeps sending us back to zero) cannot keep the download going forever.
      let highWater = current.received;
      for (;;) {
        try {
          await this.fetchRest(current);
          break;
        } catch (e) {
          if (!(e instanceof TransientError)) throw e;
          const written = current.received;
          // Attempts count failures in a row: a connection that got further than ever starts the count again.
          attempts = written > highWater ? 1 : attempts + 1;
          highWater = Math.max(highWater, written);
          if (attempts >= config.maxDownloadAttempts) {
            const why = e instanceof RestartFromZero ? `the server cannot resume past ${highWater} bytes` : e.message;
            throw new UpdateError("DOWNLOAD_FAILED", `download failed after ${attempts} attempts: ${why}`);
          }
          if (e instanceof RestartFromZero) {
            current = this.open({ offset: 0 });
            continue;
          }
          this.hooks.persist(this.durable, attempts);
          ports.log.log("warn", "download interrupted", { update_id: this.body.updateId, offset: written, attempt: attempts, error: e.message });
          await sleep(ports.clock, backoffMs(ports.clock, attempts - 1, config.retryBaseMs), this.ctx.lifetime, this.cancel);
          this.checkSignals();
        }
      }
      this.current = null; // finish() ends or aborts the slot's handle whatever it answers
      current.finish();
    } catch (e) {
      throw this.abort(e);
    }
  }

  private open(from: DurableProgress): BodySink {
    this.releaseWriter();
    this.durable = from;
    // The body buffer is free while a sink opens: it re-hashes what flash holds through it.
    this.current = this.openSink(from, (p) => {
      this.durable = p;
      this.hooks.persist(p, 0);
    }, this.buffer);
    return this.current;
  }

  private async fetchRest(current: BodySink) {
    const { clock } = this.ctx.ports;
    const size = this.body.size;
    const start = current.received;
    const stallMs = this.ctx.config.stallTimeoutMs;
    const stream = await this.connect(start, stallMs);
    // Cancel or stop closes the connection: the pending read rejects and checkSignals() says why.
    const offCancel = this.cancel.onAbort(() => stream.close());
    const offLife = this.ctx.lifetime.onAbort(() => stream.close());
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
          this.checkSignals();
          throw stalled ? new TransientError(new TimeoutError("download read", stallMs).message) : new TransientError(errorMessage(e));
        }
        this.checkSignals();
        progressed = true;
        if (n === 0) break;
        fill += n;
        if (current.received + fill > size) throw new UpdateError("DOWNLOAD_FAILED", `server sent more than the manifest's ${size} bytes`);
        if (fill === this.buffer.length) {
          this.take(current, fill);
          fill = 0;
        }
      }
      if (fill > 0) this.take(current, fill);
      if (current.received < size) throw new TransientError(stalled ? `download stalled for ${stallMs} ms` : `connection ended at ${current.received} of ${size} bytes`);
    } finally {
      clock.clearTimeout(timer);
      offCancel();
      offLife();
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
      this.ctx.client.download(this.body.url, start, stallMs).then(
        (s) => (late ? s.close() : (clock.clearTimeout(timer), resolve(s))),
        (e) => (clock.clearTimeout(timer), reject(e)),
      );
    });
  }

  private checkSignals() {
    this.ctx.lifetime.throwIfAborted();
    if (this.cancel.aborted) throw new UpdateError("CANCELLED", "the server cancelled this update");
  }

  private checkResponse(stream: HttpBodyStream, start: number, size: number) {
    const length = stream.headers["content-length"];
    if (stream.status === 200) {
      if (start > 0) {
        // The server ignored Range: the only safe continuation is a clean restart of the slot.
        this.ctx.ports.log.log("warn", "server ignored Range; restarting from zero", { update_id: this.body.updateId });
        throw new RestartFromZero("the server ignored Range");
      }
      if (length !== undefined && Number(length) !== size) {
        throw new UpdateError("DOWNLOAD_FAILED", `Content-Length ${length} differs from the manifest's size ${size}`);
      }
      return;
    }
    if (stream.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(stream.headers["content-range"] ?? "");
      if (!m || Number(m[1]) !== start) throw new TransientError(`206 with Content-Range "${stream.headers["content-range"]}" does not start at ${start}`);
      if (m[3] !== "*" && Number(m[3]) !== size) throw new UpdateError("DOWNLOAD_FAILED", `Content-Range total ${m[3]} differs from the manifest's size ${size}`);
      if (length !== undefined && Number(length) !== size - start) {
        throw new UpdateError("DOWNLOAD_FAILED", `Content-Length ${length} differs from the ${size - start} bytes requested`);
      }
      return;
    }
    if (stream.status === 416) {
      // Unsatisfiable from where we are: start again from zero (a 416 to a request from zero is just an error).
      if (start === 0) throw new TransientError("server answered 416 to a request from byte 0");
      throw new RestartFromZero("server answered 416");
    }
    if (stream.status >= 500 || stream.status === 429) throw new TransientError(`server answered ${stream.status}`);
    throw new UpdateError("DOWNLOAD_FAILED", `download refused with HTTP ${stream.status}`);
  }

  private take(sink: BodySink, fill: number) {
    sink.take(this.buffer.subarray(0, fill));
    this.hooks.progress(sink.received, this.body.size);
  }

  /** Lets go of the slot's handle and says what the failure means (flash errors get their own codes). */
  private abort(e: unknown): unknown {
    this.releaseWriter();
    if (e instanceof OtaPortError) return new UpdateError(e.espName === "ESP_ERR_OTA_VALIDATE_FAILED" ? "IMAGE_INVALID" : "FLASH_WRITE_FAILED", e.message);
    return e;
  }

  private releaseWriter() {
    const sink = this.current;
    this.current = null;
    try {
      sink?.release();
    } catch (e) {
      if (!(e instanceof AbortedError)) throw e;
    }
  }
}
