// A key-value store whose every set() is atomic across power cuts, over a raw flash partition.
// Each commit writes the whole map as one record into the next sector round-robin (wear spreads over
// all sectors); a record counts only if its CRC checks, so a torn write or a half-erased sector leaves
// the previous record in force. Used on the ESP32 (embedded:storage/flash on the `agent` partition)
// and in the simulator alike.
import { utf8Decode, utf8Encode } from "../protocol/utf8";
import { crc32 } from "./crc32";
import type { RawFlashPort, StoragePort } from "./ports";

const MAGIC = 0x4a41544f; // "OTAJ"
const HEADER = 16; // magic, seq, length, crc (u32 LE each)

export class JournalStore implements StoragePort {
  private map: Record<string, string> = {};
  private seq = 0;
  private readonly sectors: number;

  constructor(private readonly flash: RawFlashPort) {
    this.sectors = Math.floor(flash.size / flash.sectorSize);
    if (this.sectors < 2) throw new Error("the journal needs at least two sectors");
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
    if (payload.length > this.flash.sectorSize - HEADER) {
      throw new Error(`journal record of ${payload.length} bytes exceeds a ${this.flash.sectorSize}-byte sector`);
    }
    const seq = this.seq + 1;
    const record = new Uint8Array(HEADER + payload.length);
    const dv = new DataView(record.buffer);
    dv.setUint32(0, MAGIC, true);
    dv.setUint32(4, seq, true);
    dv.setUint32(8, payload.length, true);
    dv.setUint32(12, crc32(payload), true);
    record.set(payload, HEADER);
    // The sector written next never holds the newest record, so erasing it loses nothing in force.
    const sector = seq % this.sectors;
    this.flash.eraseSector(sector);
    this.flash.write(sector * this.flash.sectorSize, record);
    this.seq = seq;
    this.map = next;
  }

  private load() {
    const header = new Uint8Array(HEADER);
    const dv = new DataView(header.buffer);
    let best: { seq: number; map: Record<string, string> } | null = null;
    for (let s = 0; s < this.sectors; s++) {
      this.flash.read(s * this.flash.sectorSize, header);
      const seq = dv.getUint32(4, true);
      const length = dv.getUint32(8, true);
      if (dv.getUint32(0, true) !== MAGIC || length > this.flash.sectorSize - HEADER) continue;
      if (best && seq <= best.seq) continue;
      const payload = new Uint8Array(length);
      this.flash.read(s * this.flash.sectorSize + HEADER, payload);
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
