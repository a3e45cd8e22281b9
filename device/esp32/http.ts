// HttpPort on the ECMA-419 HTTP client (embedded:network/http/client). Its read(buffer) copies straight
// from the TCP socket into the caller's buffer and nothing is read until asked: the TCP window, not RAM,
// absorbs a fast server, so the agent's one download buffer is the only one. https goes through Moddable's TLS
// (embedded:io/socket/tcp/tls) with the pinned CA as the one certificate the connection registers; the build
// carries none of Moddable's public CA certificates (only the store's index), so nothing else anchors a chain.
import HTTPClient from "embedded:network/http/client";
import TCP from "embedded:io/socket/tcp";
import Timer from "timer";
import type { HttpBodyStream, HttpPort, HttpRequest, HttpResponse } from "../core/ports";
import { NetResolver } from "./net-resolver";
import { connectionFailure, PinnedCas, tlsSocketOptions, type TlsFault } from "./tls-socket";
import { parseUrl } from "./url";

type Client = InstanceType<typeof HTTPClient>;
type Request = ReturnType<Client["request"]>;

/** The pinned CAs: DER resources named in manifest.json (config `caCerts`), one, or two while a CA is rotated. */
export interface EspTlsOptions {
  caResources: string[];
}

function open(url: string, tls: PinnedCas | null, onError: (e: Error) => void): { client: Client; path: string; host: string } {
  const u = parseUrl(url);
  if (tls && u.scheme !== "https") throw new Error(`TLS_REQUIRED: refused ${u.scheme}:// URL: this device only talks TLS to its pinned CAs (${u.host})`);
  if (!tls && u.scheme !== "http") throw new Error(`https needs a pinned CA (config caCerts): ${url}`);
  // Moddable's TLS verifies the chain, each certificate's validity against the clock (SNTP ran before main) and the
  // server name against the leaf's subjectAltName; tls-errors.ts says which failures it tells apart.
  const fault: TlsFault = {};
  const socket = tls ? tlsSocketOptions(tls, fault) : { io: TCP };
  const client = new HTTPClient({
    host: u.host,
    port: u.port,
    dns: { io: NetResolver },
    socket,
    onError: () => {
      tls?.failed();
      const refusal = connectionFailure(fault, u.host);
      onError(new Error(refusal ? `${refusal.code}: ${refusal.detail}` : `connection failed (${u.host})`));
    },
  } as ConstructorParameters<typeof HTTPClient>[0]);
  return { client, path: u.path, host: u.host };
}

function headerMap(headers: Record<string, string>): Map<string, string> {
  const map = new Map<string, string>();
  for (const name in headers) map.set(name, headers[name]);
  return map;
}

/** A body with neither Content-Length nor chunking runs until the server closes the connection (RFC 9112 §6.3), and
 * Moddable's client reports that close as onDone(Error): for such a body it is the end. A body cut short looks the
 * same; the image's SHA-256 and the JSON parse catch that. */
function closeDelimited(headers: Record<string, string>): boolean {
  return headers["content-length"] === undefined && headers["transfer-encoding"]?.toLowerCase() !== "chunked";
}

function plain(headers: Map<unknown, string>): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => (out[String(name).toLowerCase()] = value));
  return out;
}

export class EspHttpPort implements HttpPort {
  #tls: PinnedCas | null;
  constructor(tls?: EspTlsOptions) {
    this.#tls = tls && tls.caResources.length > 0 ? new PinnedCas(tls.caResources) : null;
  }

  request(req: HttpRequest): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let status = 0;
      let headers: Record<string, string> = {};
      const chunks: ArrayBuffer[] = [];
      const body = req.body === undefined ? undefined : ArrayBuffer.fromString(req.body);
      let sent = 0;
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        Timer.clear(timer);
        client.close();
        if (error) reject(error);
        else {
          const all = chunks.length ? chunks[0].concat(...chunks.slice(1)) : new ArrayBuffer(0);
          resolve({ status, headers, body: String.fromArrayBuffer(all) });
        }
      };
      const { client, path } = open(req.url, this.#tls, (e) => finish(e));
      const timer = Timer.set(() => finish(new Error(`timeout after ${req.timeoutMs} ms: ${req.method} ${req.url}`)), req.timeoutMs);
      const requestHeaders = headerMap(req.headers ?? {});
      if (body) requestHeaders.set("content-length", String(body.byteLength));
      client.request({
        method: req.method,
        path,
        headers: requestHeaders,
        onWritable(count) {
          if (!body || sent >= body.byteLength) return;
          const n = Math.min(count, body.byteLength - sent);
          this.write(new Uint8Array(body, sent, n));
          sent += n;
        },
        onHeaders(s, h) {
          status = s;
          headers = plain(h);
        },
        onReadable(count) {
          const piece = this.read(count);
          if (piece) chunks.push(piece);
        },
        onDone(error) {
          finish(error && !(status && closeDelimited(headers)) ? new Error(`${req.method} ${req.url} failed`) : undefined);
        },
      });
    });
  }

  stream(url: string, headers: Record<string, string>, timeoutMs: number): Promise<HttpBodyStream> {
    return new Promise((resolve, reject) => {
      const stream = new EspBodyStream();
      const timer = Timer.set(() => {
        stream.close();
        reject(new Error(`timeout after ${timeoutMs} ms waiting for ${url}`));
      }, timeoutMs);
      const { client, path } = open(url, this.#tls, (e) => {
        Timer.clear(timer);
        stream.fail(e);
        reject(e);
      });
      stream.client = client;
      stream.request = client.request({
        method: "GET",
        path,
        headers: headerMap(headers),
        onHeaders(status, h) {
          Timer.clear(timer);
          stream.status = status;
          stream.headers = plain(h);
          resolve(stream);
        },
        onReadable(count) {
          stream.readable(count);
        },
        onDone(error) {
          Timer.clear(timer);
          if (error && !(stream.status && closeDelimited(stream.headers))) {
            const e = new Error(`GET ${url} failed`);
            stream.fail(e);
            reject(e);
          } else stream.done();
        },
      });
    });
  }
}

class EspBodyStream implements HttpBodyStream {
  status = 0;
  headers: Record<string, string> = {};
  client: Client | undefined;
  request: Request | undefined;
  #available = 0;
  #ended = false;
  #error: Error | undefined;
  #pending: { into: Uint8Array; resolve: (n: number) => void; reject: (e: Error) => void } | undefined;

  read(into: Uint8Array): Promise<number> {
    if (this.#pending) return Promise.reject(new Error("read already pending"));
    return new Promise((resolve, reject) => {
      this.#pending = { into, resolve, reject };
      this.#serve();
    });
  }
  close(): void {
    this.client?.close();
    this.client = this.request = undefined;
    if (!this.#ended) this.fail(new Error("stream closed"));
  }
  /** The client reports the bytes readable now (a total, not an increment). */
  readable(count: number): void {
    this.#available = count;
    this.#serve();
  }
  done(): void {
    this.#ended = true;
    this.#serve();
  }
  fail(e: Error): void {
    if (this.#ended) return; // the body was complete: a close or error after it changes nothing
    this.#error = e;
    this.#ended = true;
    this.#serve();
  }
  #serve(): void {
    const p = this.#pending;
    if (!p) return;
    if (this.#available > 0 && this.request && p.into.length > 0) {
      const n = Math.min(p.into.length, this.#available);
      this.#pending = undefined;
      try {
        this.request.read(p.into.subarray(0, n));
      } catch (e) {
        p.reject(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      this.#available -= n;
      p.resolve(n);
    } else if (this.#ended || p.into.length === 0) {
      this.#pending = undefined;
      if (this.#error) p.reject(this.#error);
      else p.resolve(0);
    }
  }
}
