// HttpPort on Node's http/https, with a pull-based body stream (the agent reads into its own buffer).
// Optional network faults let tests drop or stall a download at chosen byte offsets.
import http from "node:http";
import https from "node:https";
import type { HttpBodyStream, HttpPort, HttpRequest, HttpResponse } from "../../device/core/ports";

const MAX_API_BODY = 64 * 1024;

export interface NetworkFaults {
  /** Called as download bytes arrive (running total over all streams); "drop" cuts the connection there,
   * "stall" stops delivering bytes without closing. */
  onBytes?(total: number): "ok" | "drop" | "stall";
}

export class NodeHttpPort implements HttpPort {
  /** Bytes of download bodies received, all attempts included. */
  downloaded = 0;
  requests = 0;
  constructor(private readonly faults: NetworkFaults = {}) {}

  request(req: HttpRequest): Promise<HttpResponse> {
    this.requests++;
    return new Promise((resolve, reject) => {
      const r = client(req.url).request(req.url, { method: req.method, headers: req.headers, timeout: req.timeoutMs }, (res) => {
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
      r.on("error", reject);
      r.end(req.body);
    });
  }

  stream(url: string, headers: Record<string, string>, timeoutMs: number): Promise<HttpBodyStream> {
    this.requests++;
    return new Promise((resolve, reject) => {
      const r = client(url).get(url, { headers, timeout: timeoutMs }, (res) => resolve(new NodeBodyStream(res, this)));
      r.on("timeout", () => r.destroy(new Error(`connect timed out after ${timeoutMs} ms`)));
      r.on("error", reject);
    });
  }

  /** @internal */
  account(n: number): "ok" | "drop" | "stall" {
    this.downloaded += n;
    return this.faults.onBytes?.(this.downloaded) ?? "ok";
  }
}

class NodeBodyStream implements HttpBodyStream {
  readonly status: number;
  readonly headers: Record<string, string>;
  private pending: Buffer | null = null;
  private ended = false;
  private error: Error | null = null;
  private stalled = false;
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
    res.on("error", (e) => ((this.error = e), poke()));
    res.on("close", () => {
      if (!this.ended && !this.error) this.error = new Error("connection closed before the end of the body");
      poke();
    });
  }

  async read(into: Uint8Array): Promise<number> {
    for (;;) {
      if (this.pending && this.pending.length > 0) {
        const n = Math.min(into.length, this.pending.length);
        into.set(this.pending.subarray(0, n));
        this.pending = n < this.pending.length ? this.pending.subarray(n) : null;
        return n;
      }
      if (this.error) throw this.error;
      if (!this.stalled) {
        const chunk = this.res.read() as Buffer | null;
        if (chunk) {
          const verdict = this.port.account(chunk.length);
          if (verdict === "drop") {
            this.res.destroy();
            throw new Error("network dropped (injected fault)");
          }
          if (verdict === "stall") this.stalled = true; // this chunk is lost and nothing more arrives
          else this.pending = chunk;
          continue;
        }
        if (this.ended) return 0;
      }
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  close() {
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
