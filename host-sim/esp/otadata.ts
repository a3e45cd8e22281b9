// otadata: two copies of esp_ota_select_entry_t, one per 4 KiB sector of the data/ota partition.
// Layout, CRC and selection rules follow esp_flash_partitions.h and bootloader_common_loader.c (ESP-IDF v6.0).
import type { NorFlash } from "../flash/nor-flash";
import { SECTOR_SIZE } from "../flash/nor-flash";
import type { Partition } from "./partition-table";

export const OTADATA_SIZE = 0x2000;
export const OTA_ENTRY_SIZE = 32;
export const SEQ_EMPTY = 0xffffffff;

export const OtaImgState = {
  NEW: 0x0,
  PENDING_VERIFY: 0x1,
  VALID: 0x2,
  INVALID: 0x3,
  ABORTED: 0x4,
  UNDEFINED: 0xffffffff,
} as const;
export type OtaImgState = (typeof OtaImgState)[keyof typeof OtaImgState];

export function stateName(state: number): string {
  for (const [name, value] of Object.entries(OtaImgState)) if (value === state) return name;
  return `0x${(state >>> 0).toString(16)}`;
}

export interface OtaSelectEntry {
  seq: number;
  /** 20 bytes, unused by ESP-IDF; rewrites keep whatever was read. */
  seqLabel: Uint8Array;
  state: number;
  crc: number;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** esp_rom_crc32_le(crc, buf): reflected CRC-32 that inverts on entry and on exit. */
export function espRomCrc32Le(crc: number, bytes: Uint8Array): number {
  let c = ~crc >>> 0;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8)) >>> 0;
  return ~c >>> 0;
}

/** bootloader_common_ota_select_crc: covers ota_seq only, seeded with UINT32_MAX (not zlib's 0). */
export function otaSeqCrc(seq: number): number {
  const le = new Uint8Array(4);
  new DataView(le.buffer).setUint32(0, seq >>> 0, true);
  return espRomCrc32Le(0xffffffff, le);
}

export function encodeEntry(e: OtaSelectEntry): Uint8Array {
  const out = new Uint8Array(OTA_ENTRY_SIZE);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, e.seq >>> 0, true);
  out.set(e.seqLabel.subarray(0, 20), 4);
  dv.setUint32(24, e.state >>> 0, true);
  dv.setUint32(28, e.crc >>> 0, true);
  return out;
}

export function decodeEntry(bytes: Uint8Array): OtaSelectEntry {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, OTA_ENTRY_SIZE);
  return {
    seq: dv.getUint32(0, true),
    seqLabel: bytes.slice(4, 24),
    state: dv.getUint32(24, true),
    crc: dv.getUint32(28, true),
  };
}

/** A fresh entry as ESP-IDF writes it: label bytes 0xFF, CRC over seq. */
export function makeEntry(seq: number, state: number, seqLabel = new Uint8Array(20).fill(0xff)): OtaSelectEntry {
  return { seq: seq >>> 0, seqLabel, state: state >>> 0, crc: otaSeqCrc(seq) };
}

/** bootloader_common_ota_select_invalid */
export function isInvalid(e: OtaSelectEntry): boolean {
  return e.seq === SEQ_EMPTY || e.state === OtaImgState.INVALID || e.state === OtaImgState.ABORTED;
}

/** bootloader_common_ota_select_valid: NEW, PENDING_VERIFY, VALID and UNDEFINED all count as valid. */
export function isValid(e: OtaSelectEntry): boolean {
  return !isInvalid(e) && crcOk(e);
}

/** The CRC covers ota_seq only; an erased entry (crc 0xFFFFFFFF) fails it. */
export function crcOk(e: OtaSelectEntry): boolean {
  return e.crc === otaSeqCrc(e.seq);
}

/** bootloader_common_select_otadata: index of max (or min) seq among the ok entries; ties go to index 0. */
export function selectOtadata(entries: readonly OtaSelectEntry[], ok: readonly boolean[], max = true): number {
  if (ok[0] && ok[1]) {
    const pick = max ? Math.max(entries[0]!.seq, entries[1]!.seq) : Math.min(entries[0]!.seq, entries[1]!.seq);
    return entries[0]!.seq === pick ? 0 : 1;
  }
  if (ok[0]) return 0;
  if (ok[1]) return 1;
  return -1;
}

/** bootloader_common_get_active_otadata */
export function activeOtadata(entries: readonly OtaSelectEntry[]): number {
  return selectOtadata(entries, [isValid(entries[0]!), isValid(entries[1]!)], true);
}

/** Slot index an entry's seq points at: (seq - 1) % N. */
export function slotOfSeq(seq: number, otaCount: number): number {
  return ((seq - 1) >>> 0) % otaCount; // uint32 arithmetic, as in C
}

/** Reads and writes the two copies of otadata on a flash. */
export class Otadata {
  constructor(private readonly flash: NorFlash, readonly partition: Partition) {
    if (partition.size < OTADATA_SIZE) throw new Error(`otadata partition is 0x${partition.size.toString(16)} bytes, needs 0x2000`);
  }

  read(): [OtaSelectEntry, OtaSelectEntry] {
    return [this.readCopy(0), this.readCopy(1)];
  }

  readCopy(i: 0 | 1): OtaSelectEntry {
    return decodeEntry(this.flash.read(this.partition.offset + i * SECTOR_SIZE, OTA_ENTRY_SIZE));
  }

  /** Every update erases one sector and writes 32 bytes; the other copy is never touched by the same step. */
  writeCopy(i: 0 | 1, e: OtaSelectEntry) {
    const at = this.partition.offset + i * SECTOR_SIZE;
    this.flash.eraseSector(at);
    this.flash.write(at, encodeEntry(e));
  }

  /** rewrite_ota_seq: set seq (and CRC) in copy `sector`, keeping the caller's state and label. */
  rewriteSeq(entries: OtaSelectEntry[], seq: number, sector: 0 | 1) {
    const e = entries[sector]!;
    e.seq = seq >>> 0;
    e.crc = otaSeqCrc(seq);
    this.writeCopy(sector, e);
  }

  eraseCopy(i: 0 | 1) {
    this.flash.eraseSector(this.partition.offset + i * SECTOR_SIZE);
  }

  eraseAll() {
    this.flash.eraseRange(this.partition.offset, OTADATA_SIZE);
  }
}
