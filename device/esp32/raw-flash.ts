// RawFlashPort on embedded:storage/flash opened on a data partition (the `agent` partition), for the
// JournalStore the simulator runs too.
import FlashStorage from "embedded:storage/flash";
import type { RawFlashPort } from "../core/ports";

export class EspRawFlash implements RawFlashPort {
  readonly size: number;
  readonly sectorSize: number;
  #flash: ReturnType<typeof FlashStorage.open>;

  constructor(options: { partition: string }) {
    this.#flash = FlashStorage.open({ path: options.partition, mode: "r+" });
    const status = this.#flash.status();
    this.size = status.size;
    this.sectorSize = status.blockLength;
  }
  read(offset: number, into: Uint8Array): void {
    this.#check(offset, into.length);
    this.#flash.read(into, offset);
  }
  write(offset: number, bytes: Uint8Array): void {
    this.#check(offset, bytes.length);
    this.#flash.write(bytes, offset);
  }
  eraseSector(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.size / this.sectorSize)
      throw new RangeError(`sector ${index} outside the partition`);
    this.#flash.eraseBlock(index, index + 1);
  }
  #check(offset: number, length: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + length > this.size)
      throw new RangeError(`${length} bytes at ${offset} outside the partition`);
  }
}
