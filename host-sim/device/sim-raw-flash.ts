// RawFlashPort over one data partition of the simulated flash (the `agent` journal partition).
import type { RawFlashPort } from "../../device/core/ports";
import type { Partition } from "../esp/partition-table";
import { SECTOR_SIZE } from "../flash/nor-flash";
import type { NorFlash } from "../flash/nor-flash";

export class SimRawFlash implements RawFlashPort {
  readonly sectorSize = SECTOR_SIZE;
  constructor(private readonly flash: NorFlash, private readonly partition: Partition) {}

  get size() {
    return this.partition.size;
  }

  read(offset: number, into: Uint8Array) {
    this.check(offset, into.length);
    into.set(this.flash.read(this.partition.offset + offset, into.length));
  }

  write(offset: number, bytes: Uint8Array) {
    this.check(offset, bytes.length);
    this.flash.write(this.partition.offset + offset, bytes);
  }

  eraseSector(index: number) {
    this.check(index * SECTOR_SIZE, SECTOR_SIZE);
    this.flash.eraseSector(this.partition.offset + index * SECTOR_SIZE);
  }

  private check(offset: number, length: number) {
    if (offset < 0 || offset + length > this.partition.size) throw new Error(`access outside partition ${this.partition.name}`);
  }
}
