// The second-stage bootloader's app selection (bootloader_utility.c: get_selected_boot_partition and
// load_boot_image), built like ours with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE. Same rules in v4.4..v6.0.
// Not modelled: anti-rollback eFuses, secure boot, RAM load-address checks, the test-app GPIO.
import type { NorFlash } from "../flash/nor-flash";
import { NorFlash as Flash } from "../flash/nor-flash";
import type { ImageInfo } from "../../esp-image/app-image";
import { ImageVerifyError } from "../../esp-image/app-image";
import { loadPartitionTable, verifyPartitionImage } from "./esp-ota";
import type { OtaSelectEntry } from "./otadata";
import { activeOtadata, crcOk, isInvalid, makeEntry, Otadata, OtaImgState, SEQ_EMPTY, slotOfSeq, stateName } from "./otadata";
import type { Partition } from "./partition-table";
import { AppSubtype, PartitionTableError, PartitionType, findPartition } from "./partition-table";

export const FACTORY_INDEX = -1;
export const TEST_APP_INDEX = -2;

export interface BootOptions {
  /** CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE (default true). */
  rollback?: boolean;
  /** Compute the decision without writing otadata (works on a copy of the flash). */
  dryRun?: boolean;
}

export interface BootResult {
  /** The partition that boots, or null: no bootable app, the chip resets forever (a bricked device). */
  partition: Partition | null;
  /** Slot index, FACTORY_INDEX or TEST_APP_INDEX; meaningless when partition is null. */
  index: number;
  /** The verified image that boots. */
  image: ImageInfo | null;
  /** What the bootloader printed, in order. */
  log: string[];
}

/** One power-on: choose, verify and "load" an app, applying the otadata transitions ESP-IDF applies. */
export function runBootloader(flash: NorFlash, options: BootOptions = {}): BootResult {
  const target = options.dryRun ? Flash.memoryCopy(flash) : flash;
  const rollback = options.rollback ?? true;
  const log: string[] = [];
  let partitions: Partition[];
  try {
    // The bootloader checks the MD5 entry when present; the app additionally requires it.
    partitions = loadPartitionTable(target, false);
  } catch (e) {
    if (e instanceof PartitionTableError) {
      log.push(`E: failed to verify partition table: ${e.message}`);
      return { partition: null, index: FACTORY_INDEX, image: null, log };
    }
    throw e;
  }
  // bootloader_state_t: ota[] indexed by slot number, app_count = number of OTA-subtype apps.
  const ota: Partition[] = [];
  for (const p of partitions) if (p.type === PartitionType.app && (p.subtype & 0xf0) === 0x10) ota[p.subtype & 0x0f] = p;
  const appCount = partitions.filter((p) => p.type === PartitionType.app && (p.subtype & 0xf0) === 0x10).length;
  const factory = findPartition(partitions, PartitionType.app, AppSubtype.factory);
  const test = findPartition(partitions, PartitionType.app, AppSubtype.test);
  const odPart = findPartition(partitions, PartitionType.data, 0x00);

  let index: number;
  let initial = false;
  if (!odPart) {
    index = FACTORY_INDEX;
  } else {
    if (odPart.size < 0x2000) {
      log.push("E: otadata partition is smaller than two sectors");
      return { partition: null, index: FACTORY_INDEX, image: null, log };
    }
    const od = new Otadata(target, odPart);
    const e = od.read();
    if (rollback) {
      for (const i of [0, 1] as const) {
        if (e[i].state === OtaImgState.PENDING_VERIFY) {
          // The app booted once and never confirmed: it will not be chosen again.
          log.push(`W: otadata[${i}] seq ${e[i].seq} was PENDING_VERIFY: marking ABORTED`);
          e[i].state = OtaImgState.ABORTED;
          od.writeCopy(i, e[i]);
        }
      }
    }
    if ((isInvalid(e[0]) && isInvalid(e[1])) || appCount === 0) {
      if (factory) {
        log.push("I: Defaulting to factory image");
        index = FACTORY_INDEX;
      } else {
        log.push("I: No factory image, trying OTA 0");
        index = 0;
        initial = isBlank(e[0]) && isBlank(e[1]);
      }
    } else {
      const a = activeOtadata(e);
      if (a !== -1) {
        index = slotOfSeq(e[a]!.seq, appCount);
        log.push(`I: Active otadata[${a}] seq ${e[a]!.seq} state ${stateName(e[a]!.state)} → ota_${index}`);
        if (rollback && e[a]!.state === OtaImgState.NEW) {
          // Set before the image is even loaded: a crash in this boot ends as ABORTED on the next one.
          e[a]!.state = OtaImgState.PENDING_VERIFY;
          od.writeCopy(a as 0 | 1, e[a]!);
          log.push(`I: otadata[${a}] NEW → PENDING_VERIFY`);
        }
      } else {
        log.push("I: otadata has no valid entry: trying factory, then all slots");
        index = FACTORY_INDEX;
      }
    }
  }

  const tryLoad = (p: Partition | undefined, i: number): ImageInfo | null => {
    if (!p || p.size === 0) return null;
    try {
      const image = verifyPartitionImage(target, p);
      log.push(`I: Loaded app from ${p.name} at 0x${p.offset.toString(16)} (version ${image.appDesc?.version ?? "?"})`);
      return image;
    } catch (err) {
      if (!(err instanceof ImageVerifyError)) throw err;
      log.push(`E: ${i === FACTORY_INDEX ? "factory" : p.name} app partition is not bootable: ${err.message}`);
      return null;
    }
  };
  const partitionAt = (i: number) => (i === FACTORY_INDEX ? factory : ota[i]);
  const booted = (p: Partition, i: number, image: ImageInfo): BootResult => {
    if (initial && i >= 0 && odPart) {
      // set_actual_ota_seq: blank otadata gets seq = slot + 1, VALID in sector 0.
      new Otadata(target, odPart).writeCopy(0, makeEntry(i + 1, OtaImgState.VALID));
      log.push(`I: otadata was blank: wrote seq ${i + 1} VALID to sector 0`);
    }
    return { partition: p, index: i, image, log };
  };

  // Backwards from the chosen index down to factory, then forwards through the remaining slots, then test.
  for (let i = index; i >= FACTORY_INDEX; i--) {
    const p = partitionAt(i);
    const image = tryLoad(p, i);
    if (p && image) return booted(p, i, image);
  }
  for (let i = index + 1; i < appCount; i++) {
    const p = partitionAt(i);
    const image = tryLoad(p, i);
    if (p && image) return booted(p, i, image);
  }
  const testImage = tryLoad(test, TEST_APP_INDEX);
  if (test && testImage) {
    log.push("W: Falling back to test app as only bootable partition");
    return { partition: test, index: TEST_APP_INDEX, image: testImage, log };
  }
  log.push("E: No bootable app partitions in the partition table");
  return { partition: null, index, image: null, log };
}

function isBlank(e: OtaSelectEntry): boolean {
  return e.seq === SEQ_EMPTY || !crcOk(e);
}
