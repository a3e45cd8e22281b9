// Where a download's bytes come from, and whether the server's answer fits what was asked: the manifest's
// download_url, its fallback_url once the CDN failed, and the checks of a response's status and ranges.
import type { UpdateManifest } from "../protocol/manifest";
import { TransientError, UpdateError } from "./failures";
import type { HttpBodyStream, LogPort } from "./ports";

/** The server ignored Range, or cannot resume from here: the slot must be rewritten from zero. */
export class RestartFromZero extends TransientError {}

/** The base of Downloader rather than a member of it: no extra object per download on the XS heap
 * (bench: xs_update_memory_*). */
export class DownloadSource {
  /** After a failure on download_url: the manifest's fallback_url serves the rest. */
  private onFallback = false;

  constructor(protected readonly manifest: UpdateManifest) {}

  /** The body's URL: the image's (a delta fetches its patch). */
  protected get url() {
    return this.onFallback && this.manifest.fallback_url ? this.manifest.fallback_url : this.manifest.download_url;
  }

  /** After a failure on download_url, the manifest's fallback_url serves the rest (same signed sha256, so the same
   * bytes). Says whether it switched. A delta's patch has no fallback: a failed delta falls back to the full image
   * instead (installer). */
  protected fallBack(e: unknown, log: LogPort): boolean {
    const fallback = this.manifest.fallback_url;
    if (!fallback || this.onFallback || !(e instanceof TransientError || (e instanceof UpdateError && e.code === "DOWNLOAD_FAILED"))) return false;
    log.log("warn", "download failed; switching to the fallback URL", { update_id: this.manifest.update_id, error: e.message });
    this.onFallback = true;
    return true;
  }
}

/** Throws unless the response carries the body from `start` of a `size`-byte body (TransientError: try again). */
export function checkResponse(stream: HttpBodyStream, start: number, size: number, log: LogPort, updateId: string) {
  const length = stream.headers["content-length"];
  if (stream.status === 200) {
    if (start > 0) {
      // The server ignored Range: the only safe continuation is a clean restart of the slot.
      log.log("warn", "server ignored Range; restarting from zero", { update_id: updateId });
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
