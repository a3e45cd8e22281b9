// A key-value store whose every set() is atomic across power cuts, over a raw flash partition.
// Each commit writes the whole map as one record into the next slot round-robin (a slot is a few sectors;
// wear spreads over all of them); a record counts only if its CRC checks, so a torn write or a
// half-erased slot leaves the previous record in force. Used on the ESP32 (embedded:storage/flash on the `agent` partition)
// and in the simulator alike.
import { utf8Decode, utf8Encode } from "../protocol/utf8";
import { crc32 } from "./crc32";
import type { RawFlashPort, StoragePort } from "./ports";

const MAGIC = 0x4a41544f; // "OTAJ"
const HEADER = 16; // magic, seq, length, crc (u32 LE each)

export class JournalStore implements StoragePort {
  private map: Record<string, string> = {};
  private seq = 0;
  private readonly slots: number;
  private readonly slotBytes: number;

  /** `slotSectors` sectors per record (default 2: an 8 KiB record, room for a manifest and a full outbox). */
  constructor(private readonly flash: RawFlashPort, private readonly slotSectors = 2) {
    this.slots = Math.floor(flash.size / flash.sectorSize / slotSectors);
    this.slotBytes = slotSectors * flash.sectorSize;
    if (this.slots < 2) throw new Error("the journal needs room for at least two records");
    this.load();
  }

  get(key: string): string | undefined {
    return Object.prototype.hasOwnProperty.call(this.map, key) ? this.map[key] : undefined;
  }

  set(key: string, value: string) {
    const next = { ...this.map, [key]: value };
    this.commit(next);
  }

  delete(key: string) {
    if (this.get(key) === undefined) return;
    const next = { ...this.map };
    delete next[key];
    this.commit(next);
  }

  private commit(next: Record<string, string>) {
    const payload = utf8Encode(JSON.stringify(next));
    if (payload.length > this.slotBytes - HEADER) {
      throw new Error(`journal record of ${payload.length} bytes exceeds a ${this.slotBytes}-byte slot`);
    }
    const seq = this.seq + 1;
    const record = new Uint8Array(HEADER + payload.length);
    const dv = new DataView(record.buffer);
    dv.setUint32(0, MAGIC, true);
    dv.setUint32(4, seq, true);
    dv.setUint32(8, payload.length, true);
    dv.setUint32(12, crc32(payload), true);
    record.set(payload, HEADER);
    // The slot written next never holds the newest record, so erasing it loses nothing in force.
    const first = (seq % this.slots) * this.slotSectors;
    for (let i = 0; i < this.slotSectors; i++) this.flash.eraseSector(first + i);
    this.flash.write(first * this.flash.sectorSize, record);
    this.seq = seq;
    this.map = next;
  }

  private load() {
    const header = new Uint8Array(HEADER);
    const dv = new DataView(header.buffer);
    let best: { seq: number; map: Record<string, string> } | null = null;
    for (let slot = 0; slot < this.slots; slot++) {
      const at = slot * this.slotBytes;
      this.flash.read(at, header);
      const seq = dv.getUint32(4, true);
      const length = dv.getUint32(8, true);
      if (dv.getUint32(0, true) !== MAGIC || length > this.slotBytes - HEADER) continue;
      if (best && seq <= best.seq) continue;
      const payload = new Uint8Array(length);
      this.flash.read(at + HEADER, payload);
      if (crc32(payload) !== dv.getUint32(12, true)) continue;
      try {
        best = { seq, map: JSON.parse(utf8Decode(payload)) as Record<string, string> };
      } catch {
        continue; // a CRC collision on garbage: ignore the record
      }
    }
    if (best) {
      this.seq = best.seq;
      this.map = best.map;
    }
  }
}
