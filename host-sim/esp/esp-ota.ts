// The application-side esp_ota_* API (components/app_update/esp_ota_ops.c) over a simulated flash.
// Behaviour is ESP-IDF v6.0 with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE; comments mark where older versions differ.
// Anti-rollback (eFuse secure_version) is not modelled here: our sdkconfig leaves it off.
import type { NorFlash } from "../flash/nor-flash";
import { SECTOR_SIZE } from "../flash/nor-flash";
import type { AppDesc, ImageInfo } from "../../esp-image/app-image";
import { APP_DESC_OFFSET, APP_DESC_SIZE, ImageVerifyError, readAppDesc, verifyImage } from "../../esp-image/app-image";
import { EspError } from "./esp-err";
import type { OtaSelectEntry } from "./otadata";
import { activeOtadata, crcOk, isValid, Otadata, OtaImgState, SEQ_EMPTY, slotOfSeq } from "./otadata";
import type { Partition } from "./partition-table";
import {
  AppSubtype,
  PARTITION_TABLE_MAX_LEN,
  PARTITION_TABLE_OFFSET,
  PartitionType,
  findPartition,
  otaAppPartitions,
  readPartitionTable,
} from "./partition-table";

export const OTA_SIZE_UNKNOWN = 0xffffffff;
export const OTA_WITH_SEQUENTIAL_WRITES = 0xfffffffe;
const DATA_SUBTYPE_OTA = 0x00;

export interface EspOtaOptions {
  /** The partition the app runs from (what the bootloader booted); null before any boot (factory programming). */
  running: Partition | null;
  /** CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE (default true). */
  rollback?: boolean;
}

export interface OtaHandle {
  readonly id: number;
  readonly partition: Partition;
  wroteSize: number;
  /** OTA_WITH_SEQUENTIAL_WRITES: erase sectors lazily as writes reach them. */
  readonly lazyErase: boolean;
}

/** Reads the partition table at 0x8000 the way the app does (load_partitions: MD5 entry required). */
export function loadPartitionTable(flash: NorFlash, requireMd5 = true): Partition[] {
  return readPartitionTable(flash.read(PARTITION_TABLE_OFFSET, PARTITION_TABLE_MAX_LEN), { chipSize: flash.size, requireMd5 });
}

/** esp_image_verify(ESP_IMAGE_VERIFY) on the image stored in a partition, with bounded reads. */
export function verifyPartitionImage(flash: NorFlash, p: Partition): ImageInfo {
  return verifyImage(
    (offset, length) => {
      if (offset < 0 || offset + length > p.size) {
        throw new ImageVerifyError("truncated", `image runs past the end of partition ${p.name} (0x${p.size.toString(16)} bytes)`);
      }
      return flash.read(p.offset + offset, length);
    },
    { partitionSize: p.size },
  );
}

/** The app descriptor of a partition's image, or null if it has none (esp_ota_get_partition_description). */
export function partitionAppDesc(flash: NorFlash, p: Partition): AppDesc | null {
  return readAppDesc(flash.read(p.offset, APP_DESC_OFFSET + APP_DESC_SIZE));
}

export class EspOta {
  readonly partitions: Partition[];
  readonly otaSlots: Partition[];
  readonly otadata: Otadata | null;
  readonly rollback: boolean;
  private running: Partition | null;
  private handles = new Map<number, OtaHandle>();
  /** Partitions esp_ota_end verified, with the flash stamp of their bytes then (see setBootPartition). */
  private verified = new Map<number, number>();
  private nextHandle = 1;

  constructor(readonly flash: NorFlash, options: EspOtaOptions, partitions = loadPartitionTable(flash)) {
    this.partitions = partitions;
    this.otaSlots = otaAppPartitions(partitions);
    const od = findPartition(partitions, PartitionType.data, DATA_SUBTYPE_OTA);
    this.otadata = od ? new Otadata(flash, od) : null;
    this.rollback = options.rollback ?? true;
    this.running = options.running;
  }

  /** esp_ota_get_app_partition_count: ota_0, ota_1, ... until the first missing one. */
  get appCount(): number {
    let n = 0;
    while (findPartition(this.partitions, PartitionType.app, AppSubtype.ota_0 + n)) n++;
    return n;
  }

  getRunningPartition(): Partition | null {
    return this.running;
  }

  /** esp_ota_get_boot_partition */
  getBootPartition(): Partition | null {
    const n = this.appCount;
    const entries = this.readOtadata();
    const a = entries ? activeOtadata(entries) : -1;
    if (!entries || a === -1 || n === 0) {
      return (
        findPartition(this.partitions, PartitionType.app, AppSubtype.factory) ??
        this.otaSlots[0] ??
        findPartition(this.partitions, PartitionType.app, AppSubtype.test) ??
        null
      );
    }
    return this.slot(slotOfSeq(entries[a]!.seq, n)) ?? null;
  }

  /** esp_ota_get_next_update_partition(start): the OTA slot after `start` in subtype order, wrapping around. */
  getNextUpdatePartition(start: Partition | null = this.running): Partition | null {
    if (this.otaSlots.length === 0) return null;
    const i = start ? this.otaSlots.findIndex((p) => p.subtype === start.subtype && start.type === PartitionType.app) : -1;
    return this.otaSlots[(i + 1) % this.otaSlots.length]!;
  }

  /** esp_ota_get_state_partition: state from the first entry with a good CRC pointing at the partition's slot. */
  getStatePartition(p: Partition): number {
    const entries = this.readOtadata();
    const n = this.appCount;
    if (!entries || n === 0 || !isOtaApp(p)) throw new EspError("ESP_ERR_NOT_FOUND", `no otadata state for ${p.name}`);
    for (const e of entries) {
      if (crcOk(e) && slotOfSeq(e.seq, n) === (p.subtype & 0x0f)) return e.state;
    }
    throw new EspError("ESP_ERR_NOT_FOUND", `no otadata entry points at ${p.name}`);
  }

  /** esp_ota_get_partition_description */
  getPartitionDescription(p: Partition): AppDesc {
    if (p.type !== PartitionType.app) throw new EspError("ESP_ERR_INVALID_ARG", `${p.name} is not an app partition`);
    const desc = partitionAppDesc(this.flash, p);
    if (!desc) throw new EspError("ESP_ERR_NOT_FOUND", `no app description (magic 0xABCD5432) in ${p.name}`);
    return desc;
  }

  /** esp_ota_begin(partition, image_size) */
  begin(p: Partition, imageSize: number): OtaHandle {
    this.checkUpdateTarget(p);
    if (this.rollback && this.running && this.runningState() === OtaImgState.PENDING_VERIFY) {
      throw new EspError("ESP_ERR_OTA_ROLLBACK_INVALID_STATE", "the running app is still PENDING_VERIFY: confirm or roll back first");
    }
    const sized = imageSize !== 0 && imageSize !== OTA_SIZE_UNKNOWN && imageSize !== OTA_WITH_SEQUENTIAL_WRITES;
    if (sized && imageSize > p.size) throw new EspError("ESP_ERR_INVALID_SIZE", `image of ${imageSize} bytes exceeds ${p.name} (${p.size})`);
    // v5.5+: forget the rollback target that is about to be overwritten (before erasing the slot itself).
    if (this.rollback) this.invalidateInactiveOtadataSlot();
    if (imageSize === 0 || imageSize === OTA_SIZE_UNKNOWN) this.flash.eraseRange(p.offset, p.size);
    else if (sized) this.flash.eraseRange(p.offset, alignUp(imageSize, SECTOR_SIZE));
    return this.newHandle(p, 0, imageSize === OTA_WITH_SEQUENTIAL_WRITES);
  }

  /** esp_ota_resume(partition, erase_size, image_offset) (v5.3+): no erase, no magic check, no otadata change.
   * The PENDING_VERIFY refusal of begin() is master-only here, so v6.0 does not apply it. */
  resume(p: Partition, eraseSize: number, offset: number): OtaHandle {
    this.checkUpdateTarget(p);
    if (!Number.isInteger(offset) || offset < 0 || offset > p.size) throw new EspError("ESP_ERR_INVALID_ARG", `resume offset ${offset}`);
    return this.newHandle(p, offset, eraseSize === OTA_WITH_SEQUENTIAL_WRITES);
  }

  /** esp_ota_write: sequential append at the handle's offset. */
  write(h: OtaHandle, data: Uint8Array) {
    const it = this.handle(h);
    if (data.length === 0) return;
    if (it.wroteSize === 0 && data[0] !== 0xe9) {
      throw new EspError("ESP_ERR_OTA_VALIDATE_FAILED", `first byte is 0x${data[0]!.toString(16)}, not the image magic 0xE9`);
    }
    if (it.wroteSize + data.length > it.partition.size) {
      throw new EspError("ESP_ERR_INVALID_SIZE", `write past the end of ${it.partition.name}`);
    }
    if (it.lazyErase) {
      const first = Math.floor(it.wroteSize / SECTOR_SIZE);
      const last = Math.floor((it.wroteSize + data.length - 1) / SECTOR_SIZE);
      // A write that starts mid-sector finds its first sector already erased by the write that entered it.
      for (let s = it.wroteSize % SECTOR_SIZE === 0 ? first : first + 1; s <= last; s++) {
        this.flash.eraseSector(it.partition.offset + s * SECTOR_SIZE);
      }
    }
    this.flash.write(it.partition.offset + it.wroteSize, data);
    it.wroteSize += data.length;
  }

  /** esp_ota_write_with_offset: no lazy erase (begin must have erased), no magic check. */
  writeWithOffset(h: OtaHandle, data: Uint8Array, offset: number) {
    const it = this.handle(h);
    if (offset < 0 || offset + data.length > it.partition.size) {
      throw new EspError("ESP_ERR_INVALID_SIZE", `write at ${offset}+${data.length} past the end of ${it.partition.name}`);
    }
    this.flash.write(it.partition.offset + offset, data);
    it.wroteSize += data.length;
  }

  /** esp_ota_end: full image verification; the handle is freed whatever the outcome. otadata is untouched. */
  end(h: OtaHandle): ImageInfo {
    const it = this.handle(h);
    this.handles.delete(it.id);
    if (it.wroteSize === 0) throw new EspError("ESP_ERR_INVALID_ARG", "nothing was written");
    try {
      const info = verifyPartitionImage(this.flash, it.partition);
      this.verified.set(it.partition.offset, this.flash.rangeStamp(it.partition.offset, it.partition.size));
      return info;
    } catch (e) {
      if (e instanceof ImageVerifyError) throw new EspError("ESP_ERR_OTA_VALIDATE_FAILED", `image in ${it.partition.name} failed verification: ${e.message}`);
      throw e;
    }
  }

  /** esp_ota_abort */
  abort(h: OtaHandle) {
    this.handles.delete(this.handle(h).id);
  }

  /** esp_ota_set_boot_partition */
  setBootPartition(p: Partition) {
    if (p.type !== PartitionType.app) throw new EspError("ESP_ERR_INVALID_ARG", `${p.name} is not an app partition`);
    try {
      // ESP-IDF verifies the image again here. When not a byte of the partition changed since esp_ota_end verified
      // it, the simulator knows the answer (verification is a function of those bytes) and skips the second pass.
      if (this.verified.get(p.offset) !== this.flash.rangeStamp(p.offset, p.size)) verifyPartitionImage(this.flash, p);
    } catch (e) {
      if (e instanceof ImageVerifyError) throw new EspError("ESP_ERR_OTA_VALIDATE_FAILED", `image in ${p.name} failed verification: ${e.message}`);
      throw e;
    }
    if (p.subtype === AppSubtype.factory) {
      // Erasing all of otadata makes the bootloader default to factory.
      this.requireOtadata().eraseAll();
      return;
    }
    if (!isOtaApp(p)) throw new EspError("ESP_ERR_INVALID_ARG", `${p.name} is neither factory nor an OTA slot`);
    this.rewriteOtaData(p.subtype & 0x0f);
  }

  /** esp_ota_mark_app_valid_cancel_rollback */
  markAppValidCancelRollback() {
    const od = this.requireOtadata();
    const entries = od.read();
    const a = activeOtadata(entries);
    if (a === -1 || this.appCount === 0) throw new EspError("ESP_FAIL", "running firmware is factory");
    if (entries[a]!.state === OtaImgState.VALID) return;
    entries[a]!.state = OtaImgState.VALID;
    od.rewriteSeq(entries, entries[a]!.seq, a as 0 | 1);
  }

  /** esp_ota_mark_app_invalid_rollback (the _and_reboot variant is this, then a restart by the caller). */
  markAppInvalidRollback() {
    const od = this.requireOtadata();
    const entries = od.read();
    const a = activeOtadata(entries);
    if (a === -1 || this.appCount === 0) throw new EspError("ESP_FAIL", "running firmware is factory");
    if (!this.checkRollbackIsPossible()) {
      throw new EspError("ESP_ERR_OTA_ROLLBACK_FAILED", "rollback is not possible: no other valid app in the slots");
    }
    entries[a]!.state = OtaImgState.INVALID;
    od.rewriteSeq(entries, entries[a]!.seq, a as 0 | 1);
  }

  /** esp_ota_check_rollback_is_possible */
  checkRollbackIsPossible(): boolean {
    const n = this.appCount;
    const entries = this.readOtadata();
    if (n === 0 || !entries) return false;
    const ok = [isValid(entries[0]), isValid(entries[1])];
    const a = activeOtadata(entries);
    if (a === -1) return false;
    const o = 1 - a;
    if (!ok[o]) {
      const factory = findPartition(this.partitions, PartitionType.app, AppSubtype.factory);
      return factory ? this.imageOk(factory) : false;
    }
    const target = this.slot(slotOfSeq(entries[o]!.seq, n));
    return target ? this.imageOk(target) : false;
  }

  /** esp_ota_get_last_invalid_partition: the INVALID/ABORTED entry with the smallest seq. */
  getLastInvalidPartition(): Partition | null {
    const entries = this.readOtadata();
    const n = this.appCount;
    if (!entries || n === 0) return null;
    const bad = entries.filter(
      (e) => e.seq !== SEQ_EMPTY && crcOk(e) && (e.state === OtaImgState.INVALID || e.state === OtaImgState.ABORTED),
    );
    if (bad.length === 0) return null;
    const min = bad.reduce((m, e) => (e.seq < m.seq ? e : m));
    return this.slot(slotOfSeq(min.seq, n)) ?? null;
  }

  /** esp_ota_erase_last_boot_app_partition: erase the previous app and forget it in otadata. */
  eraseLastBootAppPartition() {
    const od = this.requireOtadata();
    const entries = od.read();
    const n = this.appCount;
    const a = activeOtadata(entries);
    if (a === -1 || n === 0) throw new EspError("ESP_FAIL", "no active otadata entry");
    const o = (1 - a) as 0 | 1;
    if (!isValid(entries[o]!)) throw new EspError("ESP_FAIL", "no previous app recorded in otadata");
    const last = this.slot(slotOfSeq(entries[o]!.seq, n));
    if (!last || last === this.running) throw new EspError("ESP_FAIL", "the previous app is the running one");
    this.flash.eraseRange(last.offset, last.size);
    od.eraseCopy(o);
  }

  /** State of the running partition's otadata entry, or undefined (e.g. blank otadata). */
  runningState(): number | undefined {
    if (!this.running) return undefined;
    try {
      return this.getStatePartition(this.running);
    } catch {
      return undefined;
    }
  }

  private rewriteOtaData(slot: number) {
    const n = this.appCount;
    if (slot >= n) throw new EspError("ESP_ERR_INVALID_ARG", `slot ota_${slot} is beyond the ${n} contiguous OTA slots`);
    const od = this.requireOtadata();
    const entries = od.read();
    const a = activeOtadata(entries);
    let sector: 0 | 1;
    let seq: number;
    if (a !== -1 && slotOfSeq(entries[a]!.seq, n) === slot) {
      // v6.0+: the same slot keeps its seq and sector. v4.4–v5.5 wrote the same seq into the other sector.
      sector = a as 0 | 1;
      seq = entries[a]!.seq;
    } else if (a !== -1) {
      sector = (1 - a) as 0 | 1;
      // Smallest n >= active seq with (n - 1) % N == slot; it can equal the active seq.
      const base = ((slot + 1) % n) as number;
      let i = 0;
      while (entries[a]!.seq > base + i * n) i++;
      seq = base + i * n;
    } else {
      sector = 0;
      seq = slot + 1;
    }
    entries[sector]!.state = this.rollback ? OtaImgState.NEW : OtaImgState.UNDEFINED;
    od.rewriteSeq(entries, seq, sector);
  }

  /** v5.5+ esp_ota_invalidate_inactive_ota_data_slot */
  private invalidateInactiveOtadataSlot() {
    const entries = this.readOtadata();
    const n = this.appCount;
    if (!entries || n === 0 || !this.running) return;
    const a = activeOtadata(entries);
    if (a === -1) return;
    const o = (1 - a) as 0 | 1;
    const inactive = entries[o]!;
    if (inactive.seq !== SEQ_EMPTY && crcOk(inactive) && slotOfSeq(inactive.seq, n) !== (this.running.subtype & 0x0f)) {
      this.otadata!.eraseCopy(o);
    }
  }

  private checkUpdateTarget(p: Partition) {
    if (p.type !== PartitionType.app || !isOtaApp(p)) throw new EspError("ESP_ERR_INVALID_ARG", `${p.name} is not an OTA app slot`);
    if (this.running && p.offset === this.running.offset) {
      throw new EspError("ESP_ERR_OTA_PARTITION_CONFLICT", `${p.name} is the running partition`);
    }
  }

  private imageOk(p: Partition): boolean {
    try {
      verifyPartitionImage(this.flash, p);
      return true;
    } catch (e) {
      if (e instanceof ImageVerifyError) return false;
      throw e;
    }
  }

  private readOtadata(): [OtaSelectEntry, OtaSelectEntry] | null {
    return this.otadata ? this.otadata.read() : null;
  }

  private requireOtadata(): Otadata {
    if (!this.otadata) throw new EspError("ESP_ERR_NOT_FOUND", "no otadata partition");
    return this.otadata;
  }

  private slot(i: number): Partition | undefined {
    return findPartition(this.partitions, PartitionType.app, AppSubtype.ota_0 + i);
  }

  private newHandle(p: Partition, wroteSize: number, lazyErase: boolean): OtaHandle {
    const h: OtaHandle = { id: this.nextHandle++, partition: p, wroteSize, lazyErase };
    this.handles.set(h.id, h);
    return h;
  }

  private handle(h: OtaHandle): OtaHandle {
    const it = this.handles.get(h.id);
    if (!it) throw new EspError("ESP_ERR_NOT_FOUND", `OTA handle ${h.id} is not open`);
    return it;
  }
}

function isOtaApp(p: Partition): boolean {
  return p.type === PartitionType.app && (p.subtype & 0xf0) === 0x10;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
