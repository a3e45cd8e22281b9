// embedded:storage/flash as declared by the Moddable SDK 8.x (typings/embedded/storage/flash.d.ts),
// implemented on ESP32 by modules/io/flash/esp32. Missing from @moddable/typings 5.6.0.
declare module "embedded:storage/flash" {
  export interface FlashOpenOptions {
    /** A data partition's label, or "running" / "nextota" / "xs". */
    path: string;
    mode?: "r" | "r+";
  }
  export interface FlashStatus {
    size: number;
    blockLength: number;
    blocks: number;
    writeAlign: number;
    eraseValue: number;
  }
  export class Flash {
    close(): void;
    /** Erases blocks [start, end); end defaults to start + 1. */
    eraseBlock(start: number, end?: number): void;
    read(byteLength: number, byteOffset: number): ArrayBuffer;
    read(buffer: ByteBuffer, byteOffset: number): number;
    write(buffer: ByteBuffer, byteOffset: number): void;
    status(): FlashStatus;
    format: "buffer";
  }
  const FlashStorage: {
    open(options: FlashOpenOptions): Flash;
    [Symbol.iterator](): IterableIterator<string>;
  };
  export default FlashStorage;
}
