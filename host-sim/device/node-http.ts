// HttpPort on Node's http/https, with a pull-based body stream (the agent reads into its own buffer).
// Optional network faults let tests drop or stall a download at chosen byte offsets. With pinned CAs, https only,
// verified against those CAs alone (pinned-tls.ts).
import http from "node:http";
import https from "node:https";
import type { HttpBodyStream, HttpPort, HttpRequest, HttpResponse } from "../../device/core/ports";
import { checkPinnedCas, pinnedTlsOptions, plainUrlRefusal, tlsRefusal, type PinnedTls } from "./pinned-tls";

const MAX_API_BODY = 64 * 1024;

/** Faults at exact byte counts of download traffic (the running total over every download stream). */
export interface NetworkFaults {
  /** The connection is cut once this many bytes in total have arrived (each point fires once). */
  dropAt?: number[];
  /** The connection goes silent (open, no more bytes) at these totals; the agent's stall timeout must act. */
  stallAt?: number[];
  /** A slow link: download bodies arrive at no more than this many bytes per second. */
  bytesPerSecond?: number;
}

export class NodeHttpPort implements HttpPort {
  /** Bytes of download bodies received, all attempts included. */
  downloaded = 0;
  requests = 0;
  /** @internal The link's throughput limit (bytes per second), if any. */
  readonly bytesPerSecond: number | undefined;
  /** `agent`: a shared keep-alive agent (fleets; an https.Agent for an https server); Node's global agent when absent.
   * `tls`: the pinned CAs; every URL must then be https and chain to one of them. */
  constructor(private faults: NetworkFaults = {}, private readonly agent?: http.Agent, private readonly tls: PinnedTls | null = null) {
    this.bytesPerSecond = faults.bytesPerSecond;
    if (tls) checkPinnedCas(tls.cas);
  }

  private options(url: string) {
    return { ...(this.agent ? { agent: this.agent } : {}), ...(this.tls && url.startsWith("https:") ? pinnedTlsOptions(this.tls) : {}) };
  }

  request(req: HttpRequest): Promise<HttpResponse> {
    this.requests++;
    const plain = plainUrlRefusal(req.url, this.tls);
    if (plain) return Promise.reject(plain);
    return new Promise((resolve, reject) => {
      const r = client(req.url).request(req.url, { method: req.method, headers: req.headers, timeout: req.timeoutMs, ...this.options(req.url) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_API_BODY) res.destroy(new Error(`response body over ${MAX_API_BODY} bytes`));
          else chunks.push(c);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: lower(res.headers), body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      });
      r.on("timeout", () => r.destroy(new Error(`request timed out after ${req.timeoutMs} ms`)));
      r.on("error", (e) => reject(tlsRefusal(e, req.url) ?? e));
      r.end(req.body);
    });
  }

  stream(url: string, headers: Record<string, string>, timeoutMs: number): Promise<HttpBodyStream> {
    this.requests++;
    const plain = plainUrlRefusal(url, this.tls);
    if (plain) return Promise.reject(plain);
    return new Promise((resolve, reject) => {
      let body: NodeBodyStream | null = null;
      const r = client(url).get(url, { headers, timeout: timeoutMs, ...this.options(url) }, (res) => resolve((body = new NodeBodyStream(res, this))));
      // The socket's idle timer doubles as the stall detector once the body flows.
      r.on("timeout", () => {
        const e = new Error(body ? `download stalled: no data for ${timeoutMs} ms (timed out)` : `connect timed out after ${timeoutMs} ms`);
        body?.fail(e);
        r.destroy(e);
      });
      r.on("error", (e) => reject(tlsRefusal(e, url) ?? e));
    });
  }

  private drops: number[] = [];
  private stalls: number[] = [];

  /** @internal How many of `n` arriving bytes get through, and what happens after them. */
  account(n: number): { pass: number; then: "ok" | "drop" | "stall" } {
    if (this.drops.length === 0 && this.stalls.length === 0 && (this.faults.dropAt || this.faults.stallAt)) {
      this.drops = [...(this.faults.dropAt ?? [])].sort((a, b) => a - b);
      this.stalls = [...(this.faults.stallAt ?? [])].sort((a, b) => a - b);
      this.faults = {};
    }
    const end = this.downloaded + n;
    const drop = this.drops[0] !== undefined && this.drops[0] < end ? this.drops[0] : Infinity;
    const stall = this.stalls[0] !== undefined && this.stalls[0] < end ? this.stalls[0] : Infinity;
    const at = Math.min(drop, stall);
    if (at === Infinity) {
      this.downloaded = end;
      return { pass: n, then: "ok" };
    }
    (at === drop ? this.drops : this.stalls).shift();
    const pass = Math.max(0, at - this.downloaded);
    this.downloaded += pass;
    return { pass, then: at === drop ? "drop" : "stall" };
  }
}

class NodeBodyStream implements HttpBodyStream {
  readonly status: number;
  readonly headers: Record<string, string>;
  private pending: Buffer | null = null;
  private ended = false;
  private error: Error | null = null;
  private stalled = false;
  private dropAfterPending = false;
  private wake: (() => void) | null = null;

  constructor(private readonly res: http.IncomingMessage, private readonly port: NodeHttpPort) {
    this.status = res.statusCode ?? 0;
    this.headers = lower(res.headers);
    const poke = () => {
      const w = this.wake;
      this.wake = null;
      w?.();
    };
    res.on("readable", poke);
    res.on("end", () => ((this.ended = true), poke()));
    res.on("error", (e) => ((this.error ??= e), poke()));
    res.on("close", () => {
      if (!this.ended && !this.error) this.error = new Error("connection closed before the end of the body");
      poke();
    });
  }

  read(into: Uint8Array): Promise<number> {
    // Fast path: bytes already here and no throttle — no async machinery per chunk.
    if (this.pending && this.pending.length > 0 && !this.port.bytesPerSecond) return Promise.resolve(this.take(into));
    return this.readSlow(into);
  }

  private take(into: Uint8Array): number {
    const pending = this.pending!;
    const n = Math.min(into.length, pending.length);
    into.set(n === pending.length ? pending : pending.subarray(0, n));
    this.pending = n < pending.length ? pending.subarray(n) : null;
    return n;
  }

  private async readSlow(into: Uint8Array): Promise<number> {
    for (;;) {
      if (this.pending && this.pending.length > 0) {
        const bps = this.port.bytesPerSecond;
        if (bps) {
          const n = Math.min(into.length, this.pending.length);
          await new Promise((r) => setTimeout(r, (n * 1000) / bps)); // the bytes take this long to arrive
          if (!this.pending) continue; // closed meanwhile
        }
        return this.take(into);
      }
      if (this.dropAfterPending) {
        this.res.destroy();
        throw new Error("network dropped (injected fault)");
      }
      if (this.error) throw this.error;
      if (!this.stalled) {
        const chunk = this.res.read() as Buffer | null;
        if (chunk) {
          const { pass, then } = this.port.account(chunk.length);
          this.pending = pass > 0 ? chunk.subarray(0, pass) : null;
          if (then === "drop") this.dropAfterPending = true;
          if (then === "stall") this.stalled = true; // the rest is lost and nothing more arrives
          continue;
        }
        if (this.ended) return 0;
      }
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  /** Ends the stream with this error (set before the socket is torn down, so it wins over "aborted"). */
  fail(e: Error) {
    this.error ??= e;
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  close() {
    // A reader waiting on a stalled stream must wake to an error, even when the socket had already ended.
    this.error ??= new Error("stream closed");
    this.res.destroy();
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

function client(url: string) {
  return url.startsWith("https:") ? https : http;
}

function lower(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}
