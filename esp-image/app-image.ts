/**
 * ESP32 application image format: a builder for simulator firmware images and a
 * verifier that mirrors ESP-IDF's `esp_image_verify(ESP_IMAGE_VERIFY, part)`.
 *
 * Facts follow /work/shared/reference/esp-idf-formats.md §3 (ESP-IDF v6.0
 * behaviour; version differences are commented where they matter). Everything
 * multi-byte is little-endian.
 */
import { createHash } from "node:crypto";
import type { Hash } from "node:crypto";

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

export const ESP_IMAGE_MAGIC = 0xe9;
export const APP_DESC_MAGIC = 0xabcd5432;
/** sizeof(esp_image_header_t) + sizeof(esp_image_segment_header_t). */
export const APP_DESC_OFFSET = 0x20;
export const APP_DESC_SIZE = 256;

const IMAGE_HEADER_SIZE = 24;
const SEGMENT_HEADER_SIZE = 8;
const MAX_SEGMENTS = 16; // ESP_IMAGE_MAX_SEGMENTS
const SIXTEEN_MB = 0x1000000;
const CHECKSUM_INITIAL = 0xef; // ESP_ROM_CHECKSUM_INITIAL
const HASH_LEN = 32;
/** ESP32 flash MMU page; mapped segments must keep file offset ≡ vaddr (mod page). */
const MMU_PAGE = 0x10000;
/** Bounded read size: verification streams multi-MB partitions in chunks of this. */
const READ_CHUNK = 0x1000;

/** "max_chip_rev_full not set" values (IS_MAX_REV_SET in bootloader_common.c). */
const MAX_REV_UNSET = [0, 0xffff];

/** esp_chip_id_t values written into esp_image_header_t.chip_id (reference §3.1). */
export const ChipId: Record<string, number> = {
  ESP32: 0x0000,
  "ESP32-S2": 0x0002,
  "ESP32-C3": 0x0005,
  "ESP32-S3": 0x0009,
  "ESP32-C2": 0x000c,
  "ESP32-C6": 0x000d,
  "ESP32-H2": 0x0010,
  "ESP32-P4": 0x0012,
  "ESP32-C61": 0x0014,
  "ESP32-C5": 0x0017,
  "ESP32-H21": 0x0019,
  "ESP32-H4": 0x001c,
  "ESP32-S31": 0x0020,
};

export function chipName(id: number): string {
  for (const [name, value] of Object.entries(ChipId)) if (value === id) return name;
  return `unknown(0x${id.toString(16).padStart(4, "0")})`;
}

// ESP32 address windows (soc/esp32/include/soc/soc.h). Only IROM/DROM matter to
// the verifier (should_map); the rest just label segments for humans.
const SOC_DROM_LOW = 0x3f400000;
const SOC_DROM_HIGH = 0x3f800000;
const SOC_IROM_LOW = 0x400d0000;
const SOC_IROM_HIGH = 0x40400000;
const REGIONS: ReadonlyArray<readonly [string, number, number]> = [
  ["DROM", SOC_DROM_LOW, SOC_DROM_HIGH],
  ["IROM", SOC_IROM_LOW, SOC_IROM_HIGH],
  ["IRAM", 0x40070000, 0x400a0000],
  ["DRAM", 0x3ffae000, 0x40000000],
  ["RTC", 0x400c0000, 0x400c2000], // RTC fast memory, instruction bus
  ["RTC", 0x3ff80000, 0x3ff82000], // RTC fast memory, data bus
  ["RTC", 0x50000000, 0x50002000], // RTC slow memory
];

function regionOf(loadAddr: number): string {
  if (loadAddr === 0) return "padding"; // esptool's padding segments use load_addr 0
  for (const [name, lo, hi] of REGIONS) if (loadAddr >= lo && loadAddr < hi) return name;
  return "unknown";
}

/** should_map(): flash-cache mapped segments, subject to the MMU page alignment rule. */
function isMapped(loadAddr: number): boolean {
  return (
    (loadAddr >= SOC_IROM_LOW && loadAddr < SOC_IROM_HIGH) ||
    (loadAddr >= SOC_DROM_LOW && loadAddr < SOC_DROM_HIGH)
  );
}

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** crash-after-confirm: passes its self-test, is confirmed, then panics once (a bug the self-test misses). */
export type Behaviour = "healthy" | "fail-self-test" | "crash" | "hang" | "crash-after-confirm";
export const BEHAVIOURS: readonly Behaviour[] = ["healthy", "fail-self-test", "crash", "hang", "crash-after-confirm"];

export interface ImageHeader {
  magic: number;
  segmentCount: number;
  spiMode: number;
  spiSpeed: number;
  spiSize: number;
  entryAddr: number;
  wpPin: number;
  chipId: number;
  minChipRev: number;
  minChipRevFull: number;
  maxChipRevFull: number;
  hashAppended: boolean;
}

export interface SegmentInfo {
  index: number;
  loadAddr: number;
  dataLen: number;
  /** Offset of the segment's data inside the image. */
  dataOffset: number;
  /** "DROM" | "IROM" | "IRAM" | "DRAM" | "RTC" | "padding" | "unknown" */
  region: string;
}

export interface AppDesc {
  magicWord: number;
  secureVersion: number;
  version: string;
  projectName: string;
  time: string;
  date: string;
  idfVer: string;
  /** hex */
  appElfSha256: string;
}

/** Our simulator's own marker block, stored right after esp_app_desc_t. */
export interface SimPayload {
  behaviour: Behaviour;
  [k: string]: unknown;
}

export interface ImageInfo {
  header: ImageHeader;
  segments: SegmentInfo[];
  checksumOffset: number;
  storedChecksum: number;
  computedChecksum: number;
  /** Total bytes including the appended hash. */
  length: number;
  storedSha256?: string;
  /** hex, over image bytes [0, checksumOffset] inclusive. */
  computedSha256: string;
  /** null if the magic word is absent. */
  appDesc: AppDesc | null;
  sim: SimPayload | null;
}

/** Reads `length` bytes at `offset` of an image or flash partition; may return fewer at the end. */
export type ImageReader = (offset: number, length: number) => Uint8Array;

export type VerifyCheck =
  | "partition-size"
  | "magic"
  | "chip-id"
  | "chip-revision"
  | "segment-count"
  | "segment-length"
  | "segment-alignment"
  | "segment-bounds"
  | "truncated"
  | "checksum"
  | "sha256"
  | "image-size";

export class ImageVerifyError extends Error {
  readonly check: VerifyCheck;
  constructor(check: VerifyCheck, message: string) {
    super(`${check}: ${message}`);
    this.name = "ImageVerifyError";
    this.check = check;
  }
}

export interface VerifyOptions {
  /** Size of the partition holding the image; the image must fit. */
  partitionSize?: number;
  /** CONFIG_IDF_FIRMWARE_CHIP_ID of the running firmware; default 0 (ESP32). */
  expectedChipId?: number;
  /** Chip revision major*100+minor; default 300 (v3.0). */
  chipRevision?: number;
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

const hex = (n: number, width = 8) => `0x${n.toString(16).padStart(width, "0")}`;
const toHex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
const u16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number) =>
  (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

function putU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}
function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

/** Fixed-size NUL-padded C string field. */
function cString(b: Uint8Array, o: number, len: number): string {
  let end = o;
  while (end < o + len && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + o, end - o).toString("utf8");
}

/** XOR-fold of the ROM checksum: IDF folds a word-wise XOR; byte-wise XOR gives the same byte. */
export function imageChecksum(data: Uint8Array, initial: number = CHECKSUM_INITIAL): number {
  let c = initial & 0xff;
  // XOR 32 bits at a time over the aligned middle and fold (as IDF does word-wise): same result, 4x fewer steps.
  const head = Math.min(data.length, (4 - (data.byteOffset % 4)) % 4);
  for (let i = 0; i < head; i++) c ^= data[i]!;
  const words = Math.floor((data.length - head) / 4);
  if (words > 0) {
    const w = new Uint32Array(data.buffer, data.byteOffset + head, words);
    let x = 0;
    for (let i = 0; i < words; i++) x ^= w[i]!;
    c ^= (x ^ (x >>> 8) ^ (x >>> 16) ^ (x >>> 24)) & 0xff;
  }
  for (let i = head + words * 4; i < data.length; i++) c ^= data[i]!;
  return c;
}

function parseHeader(b: Uint8Array): ImageHeader {
  return {
    magic: b[0]!,
    segmentCount: b[1]!,
    spiMode: b[2]!,
    spiSpeed: b[3]! & 0x0f,
    spiSize: b[3]! >> 4,
    entryAddr: u32(b, 4),
    wpPin: b[8]!,
    chipId: u16(b, 12),
    minChipRev: b[14]!,
    minChipRevFull: u16(b, 15),
    maxChipRevFull: u16(b, 17),
    // IDF tests `if (hash_appended)`, so any non-zero byte counts (esptool only writes 0/1).
    hashAppended: b[23] !== 0,
  };
}

// ---------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------

/**
 * One pass over the image in esp_image_format.c `image_load` order. Fills
 * `info` as it goes so inspectImage can report partial results. `report` is
 * called for every failed check; it throws to stop (verify) or returns to go
 * on (inspect). Failures that leave nothing sensible to read always throw.
 */
function scan(
  read: ImageReader,
  opts: VerifyOptions,
  info: Partial<ImageInfo>,
  report: (e: ImageVerifyError) => void,
): void {
  const partSize = opts.partitionSize;
  const expectedChip = opts.expectedChipId ?? ChipId.ESP32!;
  const chipRev = opts.chipRevision ?? 300;
  const fatal = (check: VerifyCheck, msg: string): never => {
    throw new ImageVerifyError(check, msg);
  };

  // Reads exactly `len` bytes. Our reader cannot look past the partition; IDF
  // would read on into the next flash region and reject the image later at the
  // final length check, so the outcome (rejection) is the same.
  const readExact = (off: number, len: number, what: string, pastPartition: VerifyCheck): Uint8Array => {
    if (partSize !== undefined && off + len > partSize) {
      fatal(pastPartition, `${what} at ${hex(off)}+${hex(len)} runs past the partition (size ${hex(partSize)})`);
    }
    const out = read(off, len);
    if (out.length < len) fatal("truncated", `${what} at ${hex(off)}: wanted ${len} bytes, got ${out.length}`);
    return out.length === len ? out : out.subarray(0, len);
  };

  // 1. Partition size ≤ 16 MB (chips with 32-bit address mapping skip this; ESP32 does not).
  if (partSize !== undefined && partSize > SIXTEEN_MB) {
    report(new ImageVerifyError("partition-size", `partition size ${hex(partSize)} invalid, larger than 16MB`));
  }

  const hb = readExact(0, IMAGE_HEADER_SIZE, "image header", "truncated");
  const header = parseHeader(hb);
  info.header = header;

  // 2. Magic. Nothing after this makes sense on an erased/garbage partition.
  if (header.magic !== ESP_IMAGE_MAGIC) {
    fatal("magic", `invalid magic byte ${hex(header.magic, 2)}, expected ${hex(ESP_IMAGE_MAGIC, 2)} (nothing flashed here?)`);
  }

  // 3. bootloader_common_check_chip_validity: the revision range is only checked when the chip id matches.
  if (header.chipId !== expectedChip) {
    report(new ImageVerifyError("chip-id", `mismatch chip ID, expected ${expectedChip} (${chipName(expectedChip)}), found ${header.chipId} (${chipName(header.chipId)})`));
  } else {
    // v5.0+ uses min_chip_rev_full; v4.4 compared the legacy min_chip_rev byte instead.
    const rev = (r: number) => `v${Math.floor(r / 100)}.${r % 100}`;
    if (chipRev < header.minChipRevFull) {
      report(new ImageVerifyError("chip-revision", `image requires chip rev >= ${rev(header.minChipRevFull)}, but chip is ${rev(chipRev)}`));
    }
    // The "disable wafer major" eFuse is assumed not burned.
    if (!MAX_REV_UNSET.includes(header.maxChipRevFull) && chipRev > header.maxChipRevFull) {
      report(new ImageVerifyError("chip-revision", `image requires chip rev <= ${rev(header.maxChipRevFull)}, but chip is ${rev(chipRev)}`));
    }
  }

  // 4. Segment count.
  if (header.segmentCount > MAX_SEGMENTS) {
    report(new ImageVerifyError("segment-count", `segment count ${header.segmentCount} exceeds max ${MAX_SEGMENTS}`));
  }

  // SHA-256 runs over everything up to and including the checksum byte. IDF only
  // hashes when hash_appended (or secure boot); we always do so info can show it.
  const sha: Hash = createHash("sha256");
  sha.update(hb);
  let checksum = CHECKSUM_INITIAL;
  const segments: SegmentInfo[] = [];
  info.segments = segments;

  // 5. Segments.
  let off = IMAGE_HEADER_SIZE;
  for (let i = 0; i < header.segmentCount; i++) {
    const sh = readExact(off, SEGMENT_HEADER_SIZE, `segment ${i} header`, "segment-bounds");
    sha.update(sh);
    const loadAddr = u32(sh, 0);
    const dataLen = u32(sh, 4);
    const dataOffset = off + SEGMENT_HEADER_SIZE;
    segments.push({ index: i, loadAddr, dataLen, dataOffset, region: regionOf(loadAddr) });

    // verify_segment_header: length first, then the mapped-segment alignment rule.
    // (master/v6.1-dev also requires segment 0 of an app to be ≥ 256 bytes; v6.0 does not.)
    if (dataLen % 4 !== 0 || dataLen >= SIXTEEN_MB) {
      const e = new ImageVerifyError("segment-length", `segment ${i}: invalid segment length ${hex(dataLen)} (must be a multiple of 4 and < 16MB)`);
      if (dataLen >= SIXTEEN_MB) throw e; // can't sensibly stream past it
      report(e);
    }
    if (isMapped(loadAddr) && dataOffset % MMU_PAGE !== loadAddr % MMU_PAGE) {
      report(new ImageVerifyError("segment-alignment", `segment ${i} load address ${hex(loadAddr)} doesn't match data ${hex(dataOffset)} (mod ${hex(MMU_PAGE)})`));
    }
    if (partSize !== undefined && dataOffset + dataLen > partSize) {
      fatal("segment-bounds", `segment ${i} data ${hex(dataOffset)}+${hex(dataLen)} runs past the partition (size ${hex(partSize)})`);
    }

    // Stream the data: checksum and hash without holding the segment in memory.
    for (let pos = 0; pos < dataLen; pos += READ_CHUNK) {
      const n = Math.min(READ_CHUNK, dataLen - pos);
      const chunk = readExact(dataOffset + pos, n, `segment ${i} data`, "segment-bounds");
      checksum = imageChecksum(chunk, checksum);
      sha.update(chunk);
    }
    off = dataOffset + dataLen;
  }

  // 6. Checksum: zero padding then the checksum byte, ending on a 16-byte boundary.
  const padLen = ((off + 1 + 15) & ~15) - off;
  const checksumOffset = off + padLen - 1;
  const tail = readExact(off, padLen, "checksum block", "image-size");
  sha.update(tail);
  const storedChecksum = tail[padLen - 1]!;
  info.checksumOffset = checksumOffset;
  info.storedChecksum = storedChecksum;
  info.computedChecksum = checksum;
  info.computedSha256 = sha.digest("hex");
  let length = checksumOffset + 1;
  info.length = length;
  if (storedChecksum !== checksum) {
    report(new ImageVerifyError("checksum", `checksum failed: calculated ${hex(checksum, 2)}, read ${hex(storedChecksum, 2)} at ${hex(checksumOffset)}`));
  }

  // 7/8. process_appended_hash_and_sig reads the digest and checks the total
  // length against the partition *before* verify_simple_hash compares it, so
  // that is the order here (reference §3.4 lists hash before length).
  if (header.hashAppended) {
    const stored = readExact(length, HASH_LEN, "appended SHA-256", "image-size");
    info.storedSha256 = toHex(stored);
    length += HASH_LEN;
    info.length = length;
  }
  if (partSize !== undefined && length > partSize) {
    report(new ImageVerifyError("image-size", `image length ${length} doesn't fit in partition length ${partSize}`));
  }
  if (header.hashAppended && info.storedSha256 !== info.computedSha256) {
    report(new ImageVerifyError("sha256", `image hash failed - image is corrupt: calculated ${info.computedSha256}, stored ${info.storedSha256}`));
  }
}

/** App descriptor and sim payload from the first bytes of the image, if readable. */
function readDescriptors(read: ImageReader, info: Partial<ImageInfo>): void {
  const head = read(0, SIM_BLOCK_OFFSET + SIM_BLOCK_MAX);
  info.appDesc = readAppDesc(head);
  info.sim = readSimPayload(head);
}

/**
 * esp_image_verify(ESP_IMAGE_VERIFY): every check of reference §3.4, in IDF's
 * order, streaming through the image with reads of at most 4 KiB (plus one
 * ~0.6 KiB read for the app descriptor). Throws ImageVerifyError on the first
 * failed check.
 */
export function verifyImage(read: ImageReader, opts: VerifyOptions = {}): ImageInfo {
  const info: Partial<ImageInfo> = {};
  scan(read, opts, info, (e) => {
    throw e;
  });
  readDescriptors(read, info);
  return info as ImageInfo;
}

function bytesReader(bytes: Uint8Array): ImageReader {
  return (offset, length) => bytes.subarray(Math.min(offset, bytes.length), Math.min(offset + length, bytes.length));
}

export function verifyImageBytes(bytes: Uint8Array, opts?: VerifyOptions): ImageInfo {
  return verifyImage(bytesReader(bytes), opts);
}

/**
 * For an "image info" CLI: parses as much as possible and never throws.
 * `error` is the first failed check (the one verifyImage would throw); parsing
 * goes on past non-structural failures (chip id, alignment, checksum, ...) and
 * stops at structural ones (bad magic, truncation, runaway lengths).
 */
export function inspectImage(bytes: Uint8Array, opts: VerifyOptions = {}): { info: Partial<ImageInfo>; error?: ImageVerifyError } {
  const info: Partial<ImageInfo> = {};
  const read = bytesReader(bytes);
  let error: ImageVerifyError | undefined;
  try {
    scan(read, opts, info, (e) => {
      error ??= e;
    });
  } catch (e) {
    // Only ImageVerifyError is expected; anything else is reported, not thrown.
    error ??= e instanceof ImageVerifyError ? e : new ImageVerifyError("truncated", `unexpected parse failure: ${String(e)}`);
  }
  try {
    readDescriptors(read, info);
  } catch {
    info.appDesc = null;
    info.sim = null;
  }
  return error ? { info, error } : { info };
}

/**
 * Like esp_ota_get_partition_description: the esp_app_desc_t at image offset
 * 0x20, or null when fewer than 0x120 bytes are given or the magic word is wrong.
 */
export function readAppDesc(bytes: Uint8Array): AppDesc | null {
  if (bytes.length < APP_DESC_OFFSET + APP_DESC_SIZE) return null;
  const d = bytes.subarray(APP_DESC_OFFSET, APP_DESC_OFFSET + APP_DESC_SIZE);
  const magicWord = u32(d, 0);
  if (magicWord !== APP_DESC_MAGIC) return null;
  return {
    magicWord,
    secureVersion: u32(d, 4),
    version: cString(d, 16, 32),
    projectName: cString(d, 48, 32),
    time: cString(d, 80, 16),
    date: cString(d, 96, 16),
    idfVer: cString(d, 112, 32),
    appElfSha256: toHex(d.subarray(144, 176)),
  };
}

// ---------------------------------------------------------------------------
// Sim payload: "OTASIMFW" + u16 LE length + UTF-8 JSON, right after the app desc
// ---------------------------------------------------------------------------

const SIM_MARKER = "OTASIMFW";
const SIM_BLOCK_OFFSET = APP_DESC_OFFSET + APP_DESC_SIZE; // 0x120
const SIM_BLOCK_MAX = 512; // whole block: marker + length + JSON
const SIM_JSON_MAX = SIM_BLOCK_MAX - SIM_MARKER.length - 2;

export function readSimPayload(bytes: Uint8Array): SimPayload | null {
  const o = SIM_BLOCK_OFFSET;
  if (bytes.length < o + SIM_MARKER.length + 2) return null;
  if (Buffer.from(bytes.buffer, bytes.byteOffset + o, SIM_MARKER.length).toString("latin1") !== SIM_MARKER) return null;
  const len = u16(bytes, o + SIM_MARKER.length);
  const start = o + SIM_MARKER.length + 2;
  if (len > SIM_JSON_MAX || start + len > bytes.length) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + start, len).toString("utf8"));
    if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
    const behaviour = (value as Record<string, unknown>).behaviour;
    if (!BEHAVIOURS.includes(behaviour as Behaviour)) return null;
    return value as SimPayload;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// Builder
// ---------------------------------------------------------------------------

export interface BuildOptions {
  /** PROJECT_VER, ≤ 31 bytes. */
  version: string;
  /** Default "ota-sim-app". */
  projectName?: string;
  secureVersion?: number;
  /**
   * Requested total image size in bytes (default 64 KiB). The builder returns
   * the smallest image of its layout whose length is ≥ size: at most 15 bytes
   * more (the checksum block ends on a 16-byte boundary), or the layout's
   * minimum (~64 KiB + a little, since IROM needs its own 64 KiB flash page)
   * when size is below that. Throws RangeError above ~7 MiB (the DROM + IROM
   * address windows).
   */
  size?: number;
  /** Default "healthy". */
  behaviour?: Behaviour;
  /** Extra sim payload fields (the JSON block must stay ≤ 512 bytes with its header). */
  sim?: Record<string, unknown>;
  /** Default 0 (ESP32). Addresses and layout stay ESP32's whatever the id. */
  chipId?: number;
  /** Default "v6.0". */
  idfVer?: string;
  /** __TIME__, default "00:00:00" (deterministic builds). */
  time?: string;
  /** __DATE__, default "Jan  1 2026". */
  date?: string;
  /** Seed for the pseudo-random filler; default derived from version and project name. */
  seed?: number;
}

// Builder layout constants. They mirror a real ESP-IDF v5.x ESP32 app (entry
// in IRAM at call_start_cpu0, .flash.text at 0x400D0020 on the second flash page).
const DROM_LOAD = SOC_DROM_LOW + APP_DESC_OFFSET; // 0x3F400020: data at file offset 0x20
const IRAM_LOAD = 0x40080000;
const IRAM_LEN = 0x400;
const IROM_LOAD = SOC_IROM_LOW + 0x20; // 0x400D0020: data at a file offset ≡ 0x20 (mod 64 KiB)
const IROM_MIN = 0x100;
const DROM_MAX = SOC_DROM_HIGH - DROM_LOAD;
const IROM_MAX = SOC_IROM_HIGH - IROM_LOAD;
const DEFAULT_SIZE = 64 * 1024;
// esptool header defaults for this build: DIO, 40 MHz, 4MB, wp pin disabled.
const SPI_MODE_DIO = 2;
const SPI_SPEED_40M = 0;
const SPI_SIZE_4MB = 2;
const WP_PIN_DISABLED = 0xee;
/** CONFIG_ESP32_REV_MAX_FULL default in IDF v5.x/v6.0 (v3.99), as in real images. */
const ESP32_MAX_REV_FULL = 399;
const MMU_PAGE_LOG2 = 16; // esp_app_desc_t.mmu_page_size (v5.4+)

/** Fixed-size C string field; throws if the text (plus NUL) doesn't fit. */
function putCString(b: Uint8Array, o: number, size: number, text: string, field: string): void {
  const enc = Buffer.from(text, "utf8");
  if (enc.length > size - 1) throw new RangeError(`${field} "${text}" is ${enc.length} bytes; at most ${size - 1} fit`);
  b.set(enc, o);
}

/** xorshift32 filler: deterministic, fast, and incompressible enough to look like code. */
function fill(b: Uint8Array, state: { s: number }): void {
  let s = state.s || 0x9e3779b9;
  let i = 0;
  for (; i + 4 <= b.length; i += 4) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    putU32(b, i, s >>> 0);
  }
  for (; i < b.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    b[i] = s & 0xff;
  }
  state.s = s >>> 0;
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

const align4 = (n: number) => (n + 3) & ~3;

interface Layout {
  dromLen: number;
  iramHdr: number;
  padHdr: number | null;
  padLen: number;
  iromHdr: number;
  iromLen: number;
  segEnd: number;
  total: number;
}

/** Offsets for a given DROM/IROM data length; inserts a padding segment to align IROM. */
function layout(dromLen: number, iromLen: number): Layout {
  const iramHdr = APP_DESC_OFFSET + dromLen;
  const afterIram = iramHdr + SEGMENT_HEADER_SIZE + IRAM_LEN;
  // IROM data must sit at ≡ IROM_LOAD (mod 64K), i.e. its header 8 bytes earlier.
  const want = (IROM_LOAD - SEGMENT_HEADER_SIZE) % MMU_PAGE;
  let iromHdr = afterIram + ((want - (afterIram % MMU_PAGE) + MMU_PAGE) % MMU_PAGE);
  let padHdr: number | null = null;
  let padLen = 0;
  if (iromHdr !== afterIram) {
    // The gap becomes a padding segment, which needs room for its own header.
    if (iromHdr - afterIram < SEGMENT_HEADER_SIZE) iromHdr += MMU_PAGE;
    padHdr = afterIram;
    padLen = iromHdr - afterIram - SEGMENT_HEADER_SIZE;
  }
  const segEnd = iromHdr + SEGMENT_HEADER_SIZE + iromLen;
  const total = ((segEnd + 1 + 15) & ~15) + HASH_LEN;
  return { dromLen, iramHdr, padHdr, padLen, iromHdr, iromLen, segEnd, total };
}

/** Smallest IROM length (multiple of 4, ≥ IROM_MIN) that brings the image to ≥ size. */
function fitIrom(dromLen: number, size: number): Layout {
  const base = layout(dromLen, 0);
  // total = roundup16(segEnd + 1) + 32 ≥ size  ⇔  segEnd ≥ roundup16(size - 32) - 16
  const needEnd = Math.ceil((size - HASH_LEN) / 16) * 16 - 16;
  const iromLen = Math.max(IROM_MIN, align4(needEnd - base.segEnd));
  return layout(dromLen, iromLen);
}

/**
 * Builds an ESP32 app image a real bootloader would accept (see BuildOptions.size):
 *
 *   header (DIO, 40 MHz, 4MB, wp 0xEE, hash_appended=1, entry in IRAM)
 *   seg 0  DROM 0x3F400020, data at 0x20: esp_app_desc_t, sim block at 0x120, rodata filler
 *   seg 1  IRAM 0x40080000, 1 KiB (RAM-loaded, so no alignment rule)
 *   seg 2  padding (load 0), when needed so the IROM data lands at ≡ 0x20 (mod 64 KiB)
 *   seg 3  IROM 0x400D0020, code filler
 *   zero pad + checksum byte (16-byte boundary), SHA-256 of everything before it
 */
export function buildAppImage(opts: BuildOptions): Uint8Array {
  const projectName = opts.projectName ?? "ota-sim-app";
  const behaviour = opts.behaviour ?? "healthy";
  if (!BEHAVIOURS.includes(behaviour)) throw new RangeError(`unknown behaviour ${String(behaviour)}`);
  const size = opts.size ?? DEFAULT_SIZE;
  const chipId = opts.chipId ?? ChipId.ESP32!;
  const seed = opts.seed ?? fnv1a(`${projectName}\0${opts.version}`);

  // Sim block: the caller's extra fields, with `behaviour` always ours.
  const { behaviour: _ignored, ...extra } = opts.sim ?? {};
  const json = Buffer.from(JSON.stringify({ behaviour, ...extra }), "utf8");
  if (json.length > SIM_JSON_MAX) {
    throw new RangeError(`sim payload JSON is ${json.length} bytes; at most ${SIM_JSON_MAX} fit in the ${SIM_BLOCK_MAX}-byte block`);
  }
  const simBlockLen = SIM_MARKER.length + 2 + json.length;

  // Split the filler roughly 1:3 between rodata (DROM) and code (IROM), then
  // let IROM absorb the rest; spill into DROM only past the IROM window.
  const dromMin = align4(APP_DESC_SIZE + simBlockLen + 64);
  let dromLen = Math.max(dromMin, align4(Math.floor(size / 4)));
  let lay = fitIrom(dromLen, size);
  for (let i = 0; i < 4 && lay.iromLen > IROM_MAX; i++) {
    dromLen += align4(lay.iromLen - IROM_MAX);
    lay = fitIrom(dromLen, size);
  }
  if (lay.iromLen > IROM_MAX || dromLen > DROM_MAX) {
    throw new RangeError(`image size ${size} exceeds what the ESP32 DROM + IROM windows can map`);
  }

  const img = new Uint8Array(lay.total);
  const rng = { s: seed >>> 0 };
  const segCount = lay.padHdr === null ? 3 : 4;

  // Image header (esp_image_header_t).
  img[0] = ESP_IMAGE_MAGIC;
  img[1] = segCount;
  img[2] = SPI_MODE_DIO;
  img[3] = (SPI_SIZE_4MB << 4) | SPI_SPEED_40M;
  putU32(img, 4, IRAM_LOAD + 0x100); // entry: call_start_cpu0 lives in IRAM on real apps
  img[8] = WP_PIN_DISABLED;
  putU16(img, 12, chipId);
  img[14] = 0; // legacy min_chip_rev
  putU16(img, 15, 0); // min_chip_rev_full v0.0
  putU16(img, 17, ESP32_MAX_REV_FULL);
  img[23] = 1; // hash_appended

  // Segment 0: DROM with esp_app_desc_t first (it is .rodata_desc, linked first).
  putU32(img, 0x18, DROM_LOAD);
  putU32(img, 0x1c, lay.dromLen);
  const d = img.subarray(APP_DESC_OFFSET, APP_DESC_OFFSET + APP_DESC_SIZE);
  putU32(d, 0, APP_DESC_MAGIC);
  putU32(d, 4, opts.secureVersion ?? 0);
  putCString(d, 16, 32, opts.version, "version");
  putCString(d, 48, 32, projectName, "projectName");
  putCString(d, 80, 16, opts.time ?? "00:00:00", "time");
  putCString(d, 96, 16, opts.date ?? "Jan  1 2026", "date");
  putCString(d, 112, 32, opts.idfVer ?? "v6.0", "idfVer");
  // app_elf_sha256: esptool patches in the ELF's hash; we have no ELF, so a stable stand-in.
  d.set(createHash("sha256").update(`ota-sim-elf\0${projectName}\0${opts.version}\0${seed}\0${json.toString("utf8")}`).digest(), 144);
  // min/max_efuse_blk_rev_full (176/178) stay 0: ESP32 does not check them.
  d[180] = MMU_PAGE_LOG2;

  let o = SIM_BLOCK_OFFSET;
  img.set(Buffer.from(SIM_MARKER, "latin1"), o);
  putU16(img, o + SIM_MARKER.length, json.length);
  img.set(json, o + SIM_MARKER.length + 2);
  o += simBlockLen;
  fill(img.subarray(o, APP_DESC_OFFSET + lay.dromLen), rng);

  // Segment 1: IRAM.
  putU32(img, lay.iramHdr, IRAM_LOAD);
  putU32(img, lay.iramHdr + 4, IRAM_LEN);
  fill(img.subarray(lay.iramHdr + 8, lay.iramHdr + 8 + IRAM_LEN), rng);

  // Segment 2: padding (zeros, load_addr 0) — still covered by the checksum.
  if (lay.padHdr !== null) {
    putU32(img, lay.padHdr, 0);
    putU32(img, lay.padHdr + 4, lay.padLen);
  }

  // Last segment: IROM.
  putU32(img, lay.iromHdr, IROM_LOAD);
  putU32(img, lay.iromHdr + 4, lay.iromLen);
  fill(img.subarray(lay.iromHdr + 8, lay.segEnd), rng);

  // Checksum over segment data only (headers excluded), then the SHA-256.
  let checksum = CHECKSUM_INITIAL;
  const segData = [
    [APP_DESC_OFFSET, lay.dromLen],
    [lay.iramHdr + 8, IRAM_LEN],
    ...(lay.padHdr === null ? [] : [[lay.padHdr + 8, lay.padLen]]),
    [lay.iromHdr + 8, lay.iromLen],
  ] as const;
  for (const [start, len] of segData) checksum = imageChecksum(img.subarray(start, start + len), checksum);
  const checksumOffset = lay.total - HASH_LEN - 1;
  img[checksumOffset] = checksum;
  img.set(createHash("sha256").update(img.subarray(0, checksumOffset + 1)).digest(), checksumOffset + 1);
  return img;
}
