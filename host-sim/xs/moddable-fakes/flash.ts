// Fake of embedded:storage/flash on the ESP32 (modules/io/flash/esp32/flash-esp32.js over flash-esp32.c), on
// the simulator's flash: open({path, mode}) finds the data partition by label ("can't find partition"
// otherwise), "r" is read-only; read(buffer | count, offset), write(buffer, offset), eraseBlock(start, stop =
// start + 1) in erase blocks, status() → {size, blockLength, blocks}.
import { hostCall } from "./host";

function bytesOf(buffer: ArrayBuffer | ArrayBufferView): Uint8Array {
  return buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

class Flash {
  readonly #path: string;
  readonly #readOnly: boolean;
  readonly #size: number;
  readonly #blockLength: number;
  constructor(path: string, readOnly: boolean) {
    [this.#size, this.#blockLength] = hostCall("flash.open", path);
    this.#path = path;
    this.#readOnly = readOnly;
  }
  read(buffer: number | ArrayBuffer | ArrayBufferView, offset: number): ArrayBuffer | number {
    if (typeof buffer === "number") {
      const got = hostCall("flash.read", this.#path, offset, buffer);
      return got.buffer.slice(got.byteOffset, got.byteOffset + got.byteLength) as ArrayBuffer;
    }
    const into = bytesOf(buffer);
    into.set(hostCall("flash.read", this.#path, offset, into.length));
    return into.length;
  }
  write(buffer: ArrayBuffer | ArrayBufferView, offset: number): void {
    if (this.#readOnly) throw new Error("read-only");
    hostCall("flash.write", this.#path, offset, bytesOf(buffer));
  }
  eraseBlock(start: number, stop = start + 1): void {
    if (this.#readOnly) throw new Error("read-only");
    hostCall("flash.erase", this.#path, start * this.#blockLength, (stop - start) * this.#blockLength);
  }
  status() {
    return { size: this.#size, blockLength: this.#blockLength, blocks: this.#size / this.#blockLength };
  }
  close(): void {}
  get format() {
    return "buffer";
  }
}

export default Object.freeze({
  open(options: { path?: string; mode?: string }) {
    if (!options || options.path === undefined) throw new Error("no path");
    const mode = options.mode ?? "r+";
    if (mode !== "r" && mode !== "r+") throw new Error("invalid mode");
    return new Flash(String(options.path), mode === "r");
  },
});
