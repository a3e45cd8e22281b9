// The ECMA-419 TCP socket (embedded:io/socket/tcp) on node:net, as Moddable's lwIP one behaves
// (modules/io/socket/lwip/tcp.c): onReadable(count) with every byte buffered so far, read() in "buffer" format (all,
// a count, or into a buffer; "invalid" past what is buffered) or one byte in "number" format, write() returning the
// send buffer left ("would block" past it, "not ready" before the connection), onWritable(space) once connected and
// as sends complete, and onError only once the received bytes are read. Callbacks come on later turns, as messages.
// With the XS globals Moddable's modules use (xsGlobals), Moddable's own MQTT client runs on it in Node.
import net from "node:net";

/** lwIP's send buffer on the ESP32 (CONFIG_LWIP_TCP_SND_BUF_DEFAULT). */
const SEND_BUFFER = 5744;

type Format = "buffer" | "number";
interface Options {
  address?: string;
  host?: string;
  port: number;
  format?: Format;
  onReadable?: (count: number) => void;
  onWritable?: (count: number) => void;
  onError?: () => void;
}

export class Ecma419Tcp {
  format: Format;
  #options: Options;
  #socket: net.Socket | undefined;
  #chunks: Buffer[] = [];
  #available = 0;
  #space = SEND_BUFFER;
  #ready = false;
  #failed = false;

  constructor(options: Options) {
    this.#options = options;
    this.format = options.format ?? "buffer";
    const socket = net.connect({ host: options.address ?? options.host, port: options.port });
    this.#socket = socket;
    socket.on("connect", () => {
      this.#ready = true;
      this.#options.onWritable?.call(this, this.#space);
    });
    socket.on("data", (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#available += chunk.length;
      this.#options.onReadable?.call(this, this.#available);
    });
    const fail = () => {
      if (this.#failed || !this.#socket) return;
      this.#failed = true;
      if (this.#available === 0) setImmediate(() => this.#socket && this.#options.onError?.call(this));
    };
    socket.on("error", fail);
    socket.on("close", fail);
  }

  read(arg?: number | ArrayBuffer | ArrayBufferView): number | ArrayBuffer | undefined {
    if (this.#available === 0) return undefined;
    if (this.format === "number") return this.#take(1)[0];
    if (arg !== undefined && typeof arg === "object") {
      const into = ArrayBuffer.isView(arg) ? new Uint8Array(arg.buffer, arg.byteOffset, arg.byteLength) : new Uint8Array(arg);
      if (into.length === 0 || into.length > this.#available) throw new Error("invalid");
      into.set(this.#take(into.length));
      return into.length;
    }
    const count = arg ?? this.#available;
    if (count <= 0 || count > this.#available) throw new Error("invalid");
    const bytes = this.#take(count);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  }

  write(data: number | ArrayBuffer | ArrayBufferView): number | undefined {
    if (!this.#ready) throw new Error("not ready");
    if (this.#failed || !this.#socket) return undefined;
    const bytes =
      typeof data === "number" ? Buffer.of(data) : ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
    if (bytes.length > this.#space) throw new Error("would block");
    this.#space -= bytes.length;
    this.#socket.write(Buffer.from(bytes), () => {
      this.#space += bytes.length;
      if (this.#socket && !this.#failed) this.#options.onWritable?.call(this, this.#space);
    });
    return this.#space;
  }

  close(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.destroy();
  }

  #take(count: number): Buffer {
    const out = Buffer.alloc(count);
    let at = 0;
    while (at < count) {
      const chunk = this.#chunks[0]!;
      const use = Math.min(chunk.length, count - at);
      chunk.copy(out, at, 0, use);
      at += use;
      if (use === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(use);
    }
    this.#available -= count;
    // As lwIP does, a pending error is delivered once the last received byte is read.
    if (this.#available === 0 && this.#failed) setImmediate(() => this.#socket && this.#options.onError?.call(this));
    return out;
  }
}

/** The XS extensions Moddable's modules (and ours) use, on Node's globals. */
export function xsGlobals(): void {
  const g = globalThis as unknown as { trace?: (...parts: unknown[]) => void };
  g.trace ??= () => {}; // xsbug's console: nothing to show it on here
  const ab = ArrayBuffer as unknown as { fromString?: (s: string) => ArrayBuffer };
  ab.fromString ??= (s) => {
    const bytes = new TextEncoder().encode(s);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  };
  const str = String as unknown as { fromArrayBuffer?: (b: ArrayBuffer) => string };
  str.fromArrayBuffer ??= (b) => new TextDecoder().decode(b);
  const proto = ArrayBuffer.prototype as unknown as { concat?: (...more: ArrayBuffer[]) => ArrayBuffer };
  proto.concat ??= function (this: ArrayBuffer, ...more: ArrayBuffer[]) {
    const all = [this, ...more];
    const out = new Uint8Array(all.reduce((n, b) => n + b.byteLength, 0));
    let at = 0;
    for (const b of all) out.set(new Uint8Array(b), at), (at += b.byteLength);
    return out.buffer;
  };
}

/** Moddable's `timer` and `time` modules on Node's timers and clock. */
export const moddableTimer = {
  set: (callback: () => void, ms = 0) => setTimeout(callback, ms),
  repeat: (callback: () => void, ms: number) => setInterval(callback, ms),
  clear: (timer: ReturnType<typeof setTimeout> | undefined) => (timer === undefined ? undefined : clearTimeout(timer)),
};
export const moddableTime = {
  get ticks() {
    return Math.floor(performance.now());
  },
  delta: (from: number, to: number = Math.floor(performance.now())) => to - from,
};
