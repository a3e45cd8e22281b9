// Creating and opening whole simulated device flashes laid out by a partitions.csv.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NorFlash } from "./flash/nor-flash";
import type { NorFlashOptions } from "./flash/nor-flash";
import type { Partition } from "./esp/partition-table";
import { PARTITION_TABLE_OFFSET, buildPartitionTableBinary, parsePartitionCsv } from "./esp/partition-table";

export const DEFAULT_FLASH_SIZE = 4 * 1024 * 1024;
/** The project's partitions.csv: the same file ESP-IDF builds the real table from. */
export const PROJECT_PARTITIONS_CSV = join(dirname(fileURLToPath(import.meta.url)), "..", "partitions.csv");

export function loadPartitionsCsv(path = PROJECT_PARTITIONS_CSV, flashSize = DEFAULT_FLASH_SIZE): Partition[] {
  return parsePartitionCsv(readFileSync(path, "utf8"), { flashSize, fileName: path });
}

/** Writes the binary partition table at 0x8000 of a blank flash (what `idf.py flash` puts there). */
export function writePartitionTable(flash: NorFlash, partitions: Partition[]) {
  flash.write(PARTITION_TABLE_OFFSET, buildPartitionTableBinary(partitions));
}

export interface CreateFlashOptions {
  /** File to back the flash; in memory when absent. */
  path?: string;
  size?: number;
  partitions?: Partition[];
  /** In memory, storing only written sectors (fleets of simulated devices). Ignored with `path`. */
  sparse?: boolean;
  /** Observer of every flash operation (tests use it to prove a region was never touched). */
  onOp?: NorFlashOptions["onOp"];
}

/** A blank device flash with its partition table written. */
export function createDeviceFlash(options: CreateFlashOptions = {}): NorFlash {
  const size = options.size ?? DEFAULT_FLASH_SIZE;
  const partitions = options.partitions ?? loadPartitionsCsv(PROJECT_PARTITIONS_CSV, size);
  const flashOptions = options.onOp ? { onOp: options.onOp } : {};
  const flash = options.path
    ? NorFlash.create(options.path, size, flashOptions)
    : options.sparse
      ? NorFlash.sparse(size, flashOptions)
      : NorFlash.memory(size, flashOptions);
  writePartitionTable(flash, partitions);
  return flash;
}

/** Factory programming (esptool write_flash): raw-write an image into a partition, no otadata change. */
export function programPartition(flash: NorFlash, p: Partition, image: Uint8Array) {
  if (image.length > p.size) throw new Error(`image of ${image.length} bytes does not fit ${p.name} (${p.size})`);
  const sectors = Math.ceil(image.length / 0x1000) * 0x1000;
  flash.eraseRange(p.offset, sectors);
  flash.write(p.offset, image);
}
