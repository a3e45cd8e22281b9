// Fake of embedded:network/http/client: the behaviour of the client the ESP32 build links,
// $(MODDABLE)/examples/io/tcp/httpclient/httpclient.js (Moddable SDK 8.2.3), re-stated over the options' socket
// and dns classes (here the TCP and net fakes, on a real connection). What the adapters rely on, as there:
// - requests queue on one connection; request headers are a Map written in order after "host:"; a body is
//   written from the request's onWritable(count) through request.write() (content-length or chunked);
// - onHeaders(status, headers, statusText) with header names lower-cased, values trimmed;
// - the body: onReadable(count) with what can be read now (at most the rest of the body or of the chunk), and
//   read(count | buffer) returns at most that (a buffer is cut to it); chunk framing is removed; a 204/205 or
//   content-length 0 has no body; without content-length and not chunked, the body runs until the connection
//   closes — and that close reaches the request as onDone(Error), as any socket error does;
// - onDone(null) from a timer once the body is complete; a socket or DNS error calls every request's onDone(Error),
//   then the client's onError(e) (e undefined for a socket error), then closes.
import Timer from "./timer";
import type { ClientOptions, RequestOptions } from "./http-client-core";
import { HttpClientCore, Request } from "./http-client-core";

export default class HTTPClient extends HttpClientCore {
  constructor(options: ClientOptions) {
    super();
    if (!options.host) throw new Error("host required");
    this.host = options.host;
    this.clientOnError = options.onError;
    const dns = new options.dns.io(options.dns);
    dns.resolve({
      host: this.host,
      onResolved: (host, address) => {
        try {
          this.socket = new options.socket.io({
            ...options.socket,
            address,
            host,
            port: options.port ?? 80,
            onReadable: (count: number) => this.onSocketReadable(count),
            onWritable: (count: number) => this.onSocketWritable(count),
            onError: () => this.fail(),
          });
        } catch (e) {
          this.fail(e);
        }
      },
      onError: (e) => this.fail(e),
    });
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
    Timer.clear(this.timer as never);
    this.timer = undefined;
    this.current = undefined;
    this.requests.length = 0;
    this.state = "closed";
  }

  request(options: RequestOptions): Request {
    options = { ...options };
    this.requests.push(options);
    if (this.state === "connected" && this.requests.length === 1) {
      this.next();
      this.timer = Timer.set(() => ((this.timer = undefined), this.onSocketWritable(this.writable)));
    }
    return (options.request = new Request(this));
  }

  readBody(request: Request, count?: number | ArrayBuffer | ArrayBufferView): unknown {
    if (this.current?.request !== request) throw new Error("bad state");
    if (this.state !== "receiveBody") return undefined;
    let buffer: ArrayBuffer | ArrayBufferView | undefined;
    let n: number;
    if (typeof count === "object") {
      buffer = count;
      n = buffer.byteLength;
      if ((buffer as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT! > 1) throw new Error("invalid buffer");
    } else n = count ?? this.readable;
    const available = Math.min(this.readable, this.chunk ?? (this.remaining === Infinity ? this.readable : this.remaining!));
    if (n > available) {
      n = available;
      if (buffer) buffer = ArrayBuffer.isView(buffer) ? new Uint8Array(buffer.buffer, buffer.byteOffset, n) : new Uint8Array(buffer, 0, n);
    }
    this.readable -= n;
    if (this.chunk === undefined) this.remaining! -= n;
    else this.chunk -= n;
    const result = this.socket!.read(buffer ?? n);
    if (this.chunk === 0) {
      this.line = "";
      if (this.readable) this.timer = Timer.set(() => ((this.timer = undefined), this.onSocketReadable(this.readable)));
    } else if (this.remaining === 0) {
      this.state = "receivedBody";
      this.timer = Timer.set(() => this.done());
    }
    return result;
  }

  /** Reads header bytes one at a time up to the end of a line; false when the line is not complete yet. */
  protected readLine(): boolean {
    const socket = this.socket!;
    socket.format = "number";
    try {
      while (this.readable > 0) {
        this.readable--;
        const c = socket.read() as number;
        if (this.state === "receiveHeader" && this.headerName === undefined && c === 58 /* : */) {
          this.headerName = this.line!.toLowerCase();
          this.line = "";
          continue;
        }
        this.line += String.fromCharCode(c);
        if (c === 10) break;
      }
    } finally {
      socket.format = "buffer";
    }
    return this.line!.endsWith("\r\n");
  }

  protected onSocketReadable(count: number): void {
    this.readable = count;
    do {
      if (this.line !== undefined && !this.readLine()) return;
      switch (this.state) {
        case "receiveResponseStatus": {
          const i = this.line!.indexOf(" ");
          const j = this.line!.indexOf(" ", i + 1);
          if (i < 0 || j < 0) return this.fail(new Error("bad response"));
          this.status = parseInt(this.line!.slice(i + 1, j));
          this.statusText = this.line!.slice(j + 1); // CRLF included, as httpclient.js leaves it
          this.line = "";
          this.state = "receiveHeader";
          this.headers = new Map();
          this.headerName = undefined;
          break;
        }
        case "receiveHeader":
          if (this.line !== "\r\n" || this.headerName !== undefined) {
            this.header(this.headerName, this.line!.trim());
            this.line = "";
            this.headerName = undefined;
            break;
          }
          if (this.status === 204 || this.status === 205) this.remaining = 0;
          else if (this.chunk !== undefined) this.remaining = undefined; // content-length is ignored when chunked
          else if (this.remaining === undefined) this.remaining = Infinity;
          this.current!.onHeaders?.call(this.current!.request!, this.status, this.headers!, this.statusText);
          if (!this.current) return; // closed in the callback
          this.headers = undefined;
          this.state = "receiveBody";
          this.line = this.chunk === undefined ? undefined : "";
          if (this.remaining === 0) return this.done();
          break;
        case "receiveBody":
          if (this.chunk !== undefined) {
            if (this.chunk === 0) {
              if (this.line === "\r\n") {
                this.line = "";
                continue; // the CRLF that ends the previous chunk
              }
              this.chunk = parseInt(this.line!.trim(), 16);
              this.line = undefined;
              if (this.chunk === 0) {
                this.state = "receiveChunkTrailer";
                this.line = "";
                continue;
              }
            }
            const n = Math.min(this.readable, this.chunk);
            if (n) this.current!.onReadable?.call(this.current!.request!, n);
          } else this.current!.onReadable?.call(this.current!.request!, this.remaining === Infinity ? this.readable : Math.min(this.readable, this.remaining!));
          return;
        case "receiveChunkTrailer":
          if (this.line !== "\r\n") throw new Error("bad chunk trailer");
          return this.done();
        default:
          throw new Error(`unexpected ${this.state}`);
      }
    } while (this.readable > 0);
  }

  protected header(name: string | undefined, value: string): void {
    if (name === undefined) return; // a line without a colon
    this.headers!.set(name, value);
    if (name === "content-length") this.remaining = parseInt(value);
    else if (name === "transfer-encoding" && value.toLowerCase() === "chunked") this.chunk = 0;
  }

  protected fail(e?: unknown): void {
    if (this.state === "receivedBody" && this.timer) {
      // The body is complete but its onDone is still on a timer: report the completion first.
      Timer.clear(this.timer as never);
      this.done();
    }
    this.state = "error";
    try {
      const current = this.current;
      this.current = undefined;
      current?.onDone?.call(current.request!, new Error());
      while (this.requests.length) {
        const r = this.requests.shift()!;
        r.onDone?.call(r.request!, new Error());
      }
      this.clientOnError?.(e);
    } catch {
      // as httpclient.js: a throwing callback does not stop the close
    }
    this.close();
  }

  protected done(): void {
    this.timer = undefined;
    this.state = "completing";
    this.current!.onDone?.call(this.current!.request!, null);
    this.state = "connected";
    this.next();
    if (this.current) this.onSocketWritable(this.writable);
  }
}
