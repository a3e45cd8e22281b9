// Fake of Moddable's `crypt` Digest (modules/crypt/digest/crypt.js over modCrypt.c), computed by the host's
// hash (real digests): new Digest(type); write(string | buffer) feeds bytes (a string as its UTF-8 bytes);
// close() returns the digest as an ArrayBuffer; reset() starts over; update() is write() and process(...)
// is reset, write each, close, as in crypt.js.
import { hostCall } from "./host";

function bytesOf(data: unknown): Uint8Array {
  if (typeof data === "string") return new TextEncoder().encode(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("crypt: expected a string or a buffer"); // xsmcGetBufferReadable
}

export class Digest {
  readonly #id: number;
  constructor(type: string) {
    this.#id = hostCall("digest.create", String(type));
  }
  write(data: unknown): void {
    hostCall("digest.write", this.#id, bytesOf(data));
  }
  update(data: unknown): void {
    this.write(data);
  }
  close(): ArrayBuffer {
    const d = hostCall("digest.close", this.#id);
    return d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength) as ArrayBuffer;
  }
  reset(): void {
    hostCall("digest.reset", this.#id);
  }
  process(...parts: unknown[]): ArrayBuffer {
    this.reset();
    for (const p of parts) this.write(p);
    return this.close();
  }
}

export default Object.freeze({ Digest });
