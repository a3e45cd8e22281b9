// The sending half of the embedded:network/http/client fake (http-client.ts has the receiving half and the
// behaviour it stands for): the request line, the header Map in order after "host:", and a body written from the
// request's onWritable(count) through request.write() — content-length or chunked, never more than is writable.
export type Socket = { read(what?: unknown): unknown; write(data: ArrayBuffer | ArrayBufferView): number | undefined; close(): void; format: string };
export type RequestOptions = {
  method?: string;
  path?: string;
  headers?: Map<string, string>;
  onHeaders?(this: Request, status: number, headers: Map<string, string>, statusText: string): void;
  onReadable?(this: Request, count: number): void;
  onWritable?(this: Request, count: number): void;
  onDone?(this: Request, error: Error | null): void;
  request?: Request;
};
export type ClientOptions = {
  host: string;
  port?: number;
  onError?: (e?: unknown) => void;
  dns: { io: new (o: object) => { resolve(o: { host: string; onResolved(host: string, address: string): void; onError(e: unknown): void }): void } };
  socket: { io: new (o: object) => Socket } & Record<string, unknown>;
};

/** Moddable's ArrayBuffer.fromString (xs-extensions.ts on xsnap). */
export const bytes = (s: string) => (ArrayBuffer as unknown as { fromString(s: string): ArrayBuffer }).fromString(s);

export class Request {
  constructor(private readonly client: HttpClientCore) {}
  read(count?: number | ArrayBuffer | ArrayBufferView): unknown {
    return this.client.readBody(this, count);
  }
  write(data?: ArrayBuffer | ArrayBufferView): number {
    return this.client.writeBody(this, data);
  }
}

export abstract class HttpClientCore {
  protected socket: Socket | undefined;
  protected host = "";
  protected clientOnError: ((e?: unknown) => void) | undefined;
  protected requests: RequestOptions[] = [];
  protected current: RequestOptions | undefined;
  protected state = "disconnected";
  protected writable = 0;
  protected readable = 0;
  protected pending: Uint8Array | undefined;
  protected headersOut: Iterator<[string, string]> | undefined;
  protected headers: Map<string, string> | undefined;
  protected headerName: string | undefined;
  protected line: string | undefined;
  protected status = 0;
  protected statusText = "";
  /** Body bytes left: a number, Infinity until the connection closes, undefined when chunked. */
  protected remaining: number | undefined;
  /** Bytes left in the current chunk (chunked responses only). */
  protected chunk: number | undefined;
  protected requestBody: number | boolean = false;
  protected timer: unknown;

  abstract readBody(request: Request, count?: number | ArrayBuffer | ArrayBufferView): unknown;

  writeBody(request: Request, data?: ArrayBuffer | ArrayBufferView): number {
    if (this.current?.request !== request || this.state !== "sendRequestBody") throw new Error("bad state");
    if (!data) {
      if (this.requestBody !== true) throw new Error("bad data");
      this.pending = new Uint8Array(bytes("0\r\n\r\n"));
      this.requestBody = false;
      return 0;
    }
    const n = data.byteLength;
    if (this.requestBody === true) {
      if (n + 8 > this.writable) throw new Error("would block");
      this.send(bytes(n.toString(16) + "\r\n"));
      this.send(data);
      this.send(bytes("\r\n"));
      return this.writable > 8 ? this.writable - 8 : 0;
    }
    if (n > this.writable || n > (this.requestBody as number)) throw new Error("would block");
    this.send(data);
    this.requestBody = (this.requestBody as number) - n;
    if (this.requestBody === 0) {
      this.state = "receiveResponseStatus";
      this.line = "";
      this.requestBody = false;
      return 0;
    }
    return Math.min(this.writable, this.requestBody);
  }

  protected onSocketWritable(count: number): void {
    this.writable = count;
    do {
      if (this.pending) {
        const use = Math.min(this.pending.length, this.writable);
        this.send(this.pending.subarray(0, use));
        this.pending = use === this.pending.length ? undefined : this.pending.subarray(use);
        if (this.pending) return;
      }
      switch (this.state) {
        case "disconnected":
          this.state = "connected";
          this.next();
          if (this.state === "sendRequest") this.requestLine();
          break;
        case "sendRequest":
          this.requestLine();
          break;
        case "sendRequestHeader": {
          const item = this.headersOut!.next();
          if (item.done) {
            this.pending = new Uint8Array(bytes("\r\n"));
            this.state = "sendRequestBody";
            this.headersOut = undefined;
            break;
          }
          const [name, value] = item.value;
          this.pending = new Uint8Array(bytes(`${name}: ${value}\r\n`));
          if (name.toLowerCase() === "content-length") this.requestBody = parseInt(value);
          else if (name.toLowerCase() === "transfer-encoding" && value.toLowerCase() === "chunked") this.requestBody = true;
          break;
        }
        case "sendRequestBody":
          if (this.requestBody) {
            let writable = this.writable;
            if (this.requestBody === true) {
              writable -= 8;
              if (writable <= 0) return;
            } else writable = Math.min(writable, this.requestBody);
            this.current!.onWritable?.call(this.current!.request!, writable);
          } else {
            this.state = "receiveResponseStatus";
            this.line = "";
          }
          break;
        case "closed":
          return;
      }
    } while (this.pending && this.writable);
  }

  protected requestLine(): void {
    this.pending = new Uint8Array(bytes(`${this.current!.method ?? "GET"} ${this.current!.path || "/"} HTTP/1.1\r\nhost: ${this.host}\r\n`));
    this.state = "sendRequestHeader";
  }

  protected next(): void {
    this.current = this.requests.shift();
    if (!this.current) return;
    this.line = undefined;
    this.pending = undefined;
    this.state = "sendRequest";
    this.headersOut = (this.current.headers ?? new Map<string, string>()).entries();
    this.remaining = undefined;
    this.chunk = undefined;
    this.requestBody = false;
  }

  protected send(data: ArrayBuffer | ArrayBufferView): void {
    this.writable = this.socket!.write(data) ?? 0;
  }
}
