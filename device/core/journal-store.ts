// A key-value store whose every set() is atomic across power cuts, over a raw flash partition.
//
// Layout: the partition is cut into slots of `slotSectors` sectors. Each commit appends one record holding the
// whole map after the previous record of the current slot; only when a record does not fit does the store move
// to the next slot round-robin, erasing it first. A record:
//
//   offset 0   u32 LE  magic 0x4A41544F ("OTAJ")
//   offset 4   u32 LE  seq (one more than the previous commit's)
//   offset 8   u32 LE  payload length in bytes
//   offset 12  u32 LE  CRC-32 of the payload
//   offset 16  payload: the map as UTF-8 JSON
//   padding up to a multiple of 16 bytes (left erased); the next record of the slot starts there.
//
// Loading scans each slot's records in order, stops at the first bad header or CRC of that slot, and takes the
// newest valid seq of all slots. A torn write or half-erased slot therefore leaves the previous record in force.
// The slot erased next never holds the newest record. Records are only ever appended after bytes written by this
// boot: after a reboot, the first commit starts a fresh slot, as a torn record may have left garbage after the
// last valid one. Today's format reads the old one (a single record at each slot start) as it is.
// Used on the ESP32 (embedded:storage/flash on the `agent` partition) and in the simulator alike.
import { utf8Decode, utf8EncodeInto } from "../protocol/utf8";
import { crc32 } from "./crc32";
import type { RawFlashPort, StoragePort } from "./ports";

const MAGIC = 0x4a41544f; // "OTAJ"
const HEADER = 16; // magic, seq, length, crc (u32 LE each)
/** Records start 16-byte aligned: the write unit of encrypted ESP32 flash. */
const ALIGN = 16;

const aligned = (n: number) => Math.ceil(n / ALIGN) * ALIGN;
// Little-endian u32s by hand: a DataView kept for them would be one more object alive for the agent's lifetime.
const putU32 = (b: Uint8Array, at: number, v: number) => {
  for (let i = 0; i < 4; i++) b[at + i] = (v >>> (8 * i)) & 0xff;
};
const getU32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

/** What a commit needs of a UTF-8 encoder: TextEncoder's encodeInto (Node's, xsnap's, Moddable's text/encoder). */
export interface Utf8Encoder {
  encodeInto(text: string, into: Uint8Array): { read: number; written: number };
}
const PORTABLE_UTF8: Utf8Encoder = { encodeInto: utf8EncodeInto };

export class JournalStore implements StoragePort {
  /** Changed in place by set/delete. No prototype: a key such as "constructor" is assigned as any other (with
   * Object.prototype frozen, as on the device, assigning it on a plain object would throw). */
  private map: Record<string, string> = Object.create(null);
  private seq = 0;
  private readonly slots: number;
  private readonly slotBytes: number;
  /** The slot holding the newest record. */
  private slot: number;
  /** Where the next record goes in `slot`, or null when the next commit must start a fresh slot. */
  private cursor: number | null = null;
  /** One slot's worth, allocated once: every commit encodes its record here, and loading reads slots into it
   * (memory is judged by high-water). */
  private readonly buffer: Uint8Array;

  /** `slotSectors` sectors per slot (default 2: an 8 KiB record, room for a manifest and a full outbox).
   * `encoder`: the platform's native UTF-8 encoder (TextEncoder), when it has one: every commit encodes a whole
   * record, which the portable loop makes cost more than the download it records. */
  constructor(
    private readonly flash: RawFlashPort,
    private readonly slotSectors = 2,
    private readonly encoder: Utf8Encoder = PORTABLE_UTF8,
  ) {
    this.slots = Math.floor(flash.size / flash.sectorSize / slotSectors);
    this.slotBytes = slotSectors * flash.sectorSize;
    if (this.slots < 2) throw new Error("the journal needs room for at least two slots");
    this.buffer = new Uint8Array(this.slotBytes);
    this.slot = this.slots - 1; // an empty journal starts in slot 0
    this.load();
  }

  get(key: string): string | undefined {
    return Object.prototype.hasOwnProperty.call(this.map, key) ? this.map[key] : undefined;
  }

  set(key: string, value: string) {
    const had = this.get(key);
    this.map[key] = value;
    this.commitOrUndo(key, had);
  }

  delete(key: string) {
    const had = this.get(key);
    if (had === undefined) return;
    delete this.map[key];
    this.commitOrUndo(key, had);
  }

  /** Commits the map as changed at `key`; a commit that fails puts back what the key held, so the map stays the
   * last one stored (changed in place rather than copied per save). */
  private commitOrUndo(key: string, had: string | undefined) {
    try {
      this.commit();
    } catch (e) {
      if (had === undefined) delete this.map[key];
      else this.map[key] = had;
      throw e;
    }
  }

  private commit() {
    const text = JSON.stringify(this.map);
    const payload = this.buffer.subarray(HEADER);
    const { read, written } = this.encoder.encodeInto(text, payload);
    if (read < text.length) throw new Error(`journal record of over ${written} bytes exceeds a ${this.slotBytes}-byte slot`);
    const seq = this.seq + 1;
    putU32(this.buffer, 0, MAGIC);
    putU32(this.buffer, 4, seq);
    putU32(this.buffer, 8, written);
    putU32(this.buffer, 12, crc32(payload, 0, written));
    const record = this.buffer.subarray(0, HEADER + written);

    const cursor = this.cursor;
    // Until this commit lands, the bytes after the last record are unknown: a failure sends the next one to a fresh slot.
    this.cursor = null;
    let slot = this.slot;
    let at = cursor ?? this.slotBytes;
    if (at + record.length > this.slotBytes) {
      // The next slot never holds the newest record (that is in `this.slot`), so erasing it loses nothing in force.
      slot = (this.slot + 1) % this.slots;
      at = 0;
      for (let i = 0; i < this.slotSectors; i++) this.flash.eraseSector(slot * this.slotSectors + i);
    }
    this.flash.write(slot * this.slotBytes + at, record);
    this.slot = slot;
    this.cursor = aligned(at + record.length);
    this.seq = seq;
  }

  private load() {
    const bytes = this.buffer;
    for (let slot = 0; slot < this.slots; slot++) {
      this.flash.read(slot * this.slotBytes, bytes);
      for (let at = 0; at + HEADER <= this.slotBytes; ) {
        const seq = getU32(bytes, at + 4);
        const length = getU32(bytes, at + 8);
        if (getU32(bytes, at) !== MAGIC || length > this.slotBytes - at - HEADER) break;
        const payload = bytes.subarray(at + HEADER, at + HEADER + length);
        if (crc32(payload) !== getU32(bytes, at + 12)) break;
        if (seq > this.seq) {
          try {
            this.map = Object.assign(Object.create(null), JSON.parse(utf8Decode(payload)) as Record<string, string>);
          } catch {
            break; // a CRC collision on garbage: the record does not count, nor does anything after it
          }
          this.seq = seq;
          this.slot = slot;
        }
        at = aligned(at + HEADER + length);
      }
    }
  }
}
