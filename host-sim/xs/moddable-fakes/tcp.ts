// Fake of embedded:io/socket/tcp as Moddable implements it on lwIP (modules/io/socket/lwip/tcp.c), over a real
// TCP connection the host holds: onWritable(sndbuf) once connected and whenever sent data is acknowledged;
// onReadable(total bytes buffered) when bytes arrive; read() in format "number" returns one byte, in "buffer"
// read() takes all, read(count) an ArrayBuffer of count, read(buffer) fills the whole buffer and returns its
// length, and asking for more than is buffered throws "invalid"; write() throws "would block" beyond sndbuf and
// returns what is left of it; a peer close or a reset is onError(), delivered only once the buffered bytes have
// been read ("error delivered after receive buffers empty").
import { FAKE_PUSH, TCP_EVENT, TCP_SNDBUF as SNDBUF } from "./calls";
import { hostCall, onPush } from "./host";

interface Options {
  address: string;
  port: number;
  format?: "buffer" | "number";
  onReadable?: (count: number) => void;
  onWritable?: (count: number) => void;
  onError?: () => void;
}

const sockets = new Map<number, TCP>();

export default class TCP {
  format: "buffer" | "number";
  readonly #options: Options;
  #id: number;
  #chunks: Uint8Array[] = [];
  #offset = 0;
  #available = 0;
  #ready = false;
  #error = false;
  #reported = false;

  constructor(options: Options) {
    this.#options = options;
    this.format = options.format ?? "buffer";
    if (this.format !== "buffer" && this.format !== "number") throw new RangeError("invalid format");
    this.#id = hostCall("tcp.open", String(options.address), options.port | 0);
    sockets.set(this.#id, this);
  }

  read(what?: number | ArrayBuffer | ArrayBufferView): number | ArrayBuffer | undefined {
    if (this.#available === 0) return undefined;
    if (this.format === "number") return this.#take(1)[0];
    let into: Uint8Array | null = null;
    let count = this.#available;
    if (typeof what === "object") {
      into = what instanceof ArrayBuffer ? new Uint8Array(what) : new Uint8Array(what.buffer, what.byteOffset, what.byteLength);
      count = into.length;
    } else if (what !== undefined) count = what | 0;
    if (count <= 0 || count > this.#available) throw new Error("invalid");
    const bytes = this.#take(count);
    if (into) {
      into.set(bytes);
      return count;
    }
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + count) as ArrayBuffer;
  }

  write(data: ArrayBuffer | ArrayBufferView | number): number | undefined {
    if (!this.#ready) throw new Error("not ready");
    if (this.#error) return undefined;
    const bytes = typeof data === "number" ? new Uint8Array([data]) : data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.length > SNDBUF) throw new Error("would block");
    return hostCall("tcp.write", this.#id, bytes);
  }

  close(): void {
    if (!sockets.delete(this.#id)) return;
    hostCall("tcp.close", this.#id);
    this.#chunks = [];
    this.#available = 0;
  }

  /** Removes count bytes from the front of what is buffered. */
  #take(count: number): Uint8Array {
    const out = new Uint8Array(count);
    let at = 0;
    while (at < count) {
      const chunk = this.#chunks[0]!;
      const use = Math.min(count - at, chunk.length - this.#offset);
      out.set(chunk.subarray(this.#offset, this.#offset + use), at);
      at += use;
      this.#offset += use;
      if (this.#offset === chunk.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
    }
    this.#available -= count;
    if (this.#available === 0 && this.#error) this.#reportError();
    return out;
  }

  #reportError(): void {
    if (this.#reported) return;
    this.#reported = true;
    // tcpTrigger: the error is delivered from the machine's next turn, not inside the read that drained it.
    Promise.resolve().then(() => sockets.has(this.#id) && this.#options.onError?.());
  }

  /** A host event for this connection. */
  static event(id: number, event: number, bytes: Uint8Array): void {
    const s = sockets.get(id);
    if (!s) return;
    if (event === TCP_EVENT.writable) {
      s.#ready = true;
      if (!s.#error) s.#options.onWritable?.(SNDBUF);
    } else if (event === TCP_EVENT.data) {
      s.#chunks.push(bytes.slice());
      s.#available += bytes.length;
      s.#options.onReadable?.(s.#available);
    } else if (event === TCP_EVENT.error) {
      s.#error = true;
      s.#ready = false;
      if (s.#available === 0) s.#reportError();
    }
  }
}

onPush(FAKE_PUSH.tcp, (r) => {
  const id = r.u32();
  const event = r.u8();
  TCP.event(id, event, r.bytes());
});
