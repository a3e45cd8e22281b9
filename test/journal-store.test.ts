import { describe, expect, it } from "vitest";
import { JournalStore } from "../device/core/journal-store";
import { SimRawFlash } from "../host-sim/device/sim-raw-flash";
import { NorFlash, PowerCutError, SECTOR_SIZE } from "../host-sim/flash/nor-flash";
import type { Partition } from "../host-sim/esp/partition-table";

const part: Partition = { name: "agent", type: 1, subtype: 6, offset: 0, size: 4 * SECTOR_SIZE, encrypted: false, readonly: false };
/** One sector per record here, so four records rotate through the four sectors. */
const open = (flash: NorFlash) => new JournalStore(new SimRawFlash(flash, part), 1);

describe("JournalStore", () => {
  it("keeps values across reopen (a reboot) and spreads writes over all sectors", () => {
    const flash = NorFlash.memory(4 * SECTOR_SIZE);
    const a = open(flash);
    for (let i = 0; i < 10; i++) a.set("k", String(i));
    a.set("other", "x");
    a.delete("other");
    const b = open(flash);
    expect(b.get("k")).toBe("9");
    expect(b.get("other")).toBeUndefined();
    expect(flash.stats.erases).toBe(12); // one per commit, round robin
  });

  it("holds records larger than a sector with two-sector slots (the default)", () => {
    const flash = NorFlash.memory(4 * SECTOR_SIZE);
    const s = new JournalStore(new SimRawFlash(flash, part));
    s.set("big", "x".repeat(6000));
    s.set("big", "y".repeat(6000));
    expect(new JournalStore(new SimRawFlash(flash, part)).get("big")).toBe("y".repeat(6000));
    expect(flash.stats.erases).toBe(4);
  });

  it("refuses a record larger than its slot without losing the old one", () => {
    const flash = NorFlash.memory(4 * SECTOR_SIZE);
    const s = open(flash);
    s.set("a", "1");
    expect(() => s.set("big", "x".repeat(SECTOR_SIZE))).toThrowError(/exceeds/);
    expect(open(flash).get("a")).toBe("1");
  });

  it("every set is atomic: a power cut after or during any operation leaves the old or the new map", () => {
    const base = NorFlash.memory(4 * SECTOR_SIZE);
    const s = open(base);
    for (let i = 0; i < 5; i++) s.set("n", String(i)); // wrap around the sectors once
    let cuts = 0;
    for (const k of [1, 2]) {
      for (const fault of [{ cutAfter: k }, { tear: { op: k } }, { tear: { op: k, fraction: 0.05 } }]) {
        const flash = NorFlash.memoryCopy(base);
        const store = open(flash);
        flash.armFaults(fault);
        expect(() => store.set("n", "new")).toThrow(PowerCutError);
        cuts++;
        flash.powerOn();
        const v = open(flash).get("n");
        expect(["4", "new"]).toContain(v);
        if ("cutAfter" in fault && fault.cutAfter === 2) expect(v).toBe("new");
        else expect(v).toBe("4");
      }
    }
    expect(cuts).toBe(6);
  });
});
