import { describe, expect, it } from "vitest";
import { JournalStore } from "../device/core/journal-store";
import { SimRawFlash } from "../host-sim/device/sim-raw-flash";
import type { FaultPlan, FlashOp } from "../host-sim/flash/nor-flash";
import { NorFlash, PowerCutError, SECTOR_SIZE } from "../host-sim/flash/nor-flash";
import type { Partition } from "../host-sim/esp/partition-table";
import { JournalStoreV1 } from "./fixtures/journal-store-v1";

const part: Partition = { name: "agent", type: 1, subtype: 6, offset: 0, size: 4 * SECTOR_SIZE, encrypted: false, readonly: false };
/** One sector per slot here, so records rotate through four slots. The flash refuses writes over non-erased bytes. */
const open = (flash: NorFlash) => new JournalStore(new SimRawFlash(flash, part), 1);
const sectorOf = (op: FlashOp) => Math.floor(op.offset / SECTOR_SIZE);

/** A flash whose mutating operations are logged. */
function loggedFlash() {
  const ops: FlashOp[] = [];
  return { ops, flash: NorFlash.memory(4 * SECTOR_SIZE, { onOp: (op) => ops.push(op) }) };
}

describe("JournalStore", () => {
  it("appends commits within a slot and keeps values across reopen (a reboot)", () => {
    const { ops, flash } = loggedFlash();
    const a = open(flash);
    for (let i = 0; i < 10; i++) a.set("k", String(i));
    a.set("other", "x");
    a.delete("other");
    const b = open(flash);
    expect(b.get("k")).toBe("9");
    expect(b.get("other")).toBeUndefined();
    // Twelve small records, one after another in slot 0: a single erase.
    expect(ops.filter((op) => op.kind === "erase").map(sectorOf)).toEqual([0]);
    const writes = ops.filter((op) => op.kind === "write");
    expect(writes.map(sectorOf)).toEqual(new Array(12).fill(0));
    for (let i = 1; i < writes.length; i++) expect(writes[i]!.offset).toBeGreaterThan(writes[i - 1]!.offset);
  });

  it("after a reboot starts a fresh slot instead of appending after bytes it did not write", () => {
    const { ops, flash } = loggedFlash();
    open(flash).set("k", "1");
    const b = open(flash);
    b.set("k", "2");
    b.set("k", "3");
    expect(ops.map((op) => `${op.kind} ${sectorOf(op)}`)).toEqual(["erase 0", "write 0", "erase 1", "write 1", "write 1"]);
    expect(open(flash).get("k")).toBe("3");
  });

  it("erases one slot per slot-full of commits, and reuses every slot in turn", () => {
    const { ops, flash } = loggedFlash();
    const s = open(flash);
    const value = "v".repeat(480); // a 512-byte record with its header and key: eight per 4 KiB slot
    for (let i = 0; i < 200; i++) s.set("k", value.slice(3) + String(i).padStart(3, "0"));
    const erases = ops.filter((op) => op.kind === "erase").map(sectorOf);
    expect(erases.length).toBe(Math.ceil(200 / 8));
    expect(erases.slice(0, 8)).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    expect(open(flash).get("k")).toBe(value.slice(3) + "199");
  });

  it("a record that fails its CRC does not count, nor does anything after it in its slot", () => {
    const ops: FlashOp[] = [];
    // Real NOR programming: writing clears bits (what a disturbed or partly programmed cell amounts to).
    const flash = NorFlash.memory(4 * SECTOR_SIZE, { strictWrites: false, onOp: (op) => ops.push(op) });
    const s = open(flash);
    for (const v of ["1", "2", "3"]) s.set("k", v);
    const second = ops.filter((op) => op.kind === "write")[1]!;
    const at = second.offset + 16 + '{"k":"'.length;
    expect(flash.read(at, 1)[0]).toBe(0x32); // "2"
    flash.write(at, Uint8Array.of(0xfd)); // "2" becomes "0": still valid JSON, but no longer its CRC
    expect(open(flash).get("k")).toBe("1");
  });

  it("holds records larger than a sector with two-sector slots (the default)", () => {
    const flash = NorFlash.memory(4 * SECTOR_SIZE);
    const s = new JournalStore(new SimRawFlash(flash, part));
    s.set("big", "x".repeat(6000));
    s.set("big", "y".repeat(6000));
    expect(new JournalStore(new SimRawFlash(flash, part)).get("big")).toBe("y".repeat(6000));
    expect(flash.stats.erases).toBe(4); // the second record does not fit after the first: next slot
  });

  it("refuses a record larger than its slot without losing the old one", () => {
    const flash = NorFlash.memory(4 * SECTOR_SIZE);
    const s = open(flash);
    s.set("a", "1");
    expect(() => s.set("big", "x".repeat(SECTOR_SIZE))).toThrowError(/exceeds/);
    s.set("b", "2");
    expect(open(flash).get("a")).toBe("1");
    expect(open(flash).get("b")).toBe("2");
  });

  it("loads what the previous journal format wrote (one record at each slot start) and carries on", () => {
    const flash = NorFlash.memory(4 * SECTOR_SIZE);
    const old = new JournalStoreV1(new SimRawFlash(flash, part), 1);
    for (let i = 0; i < 6; i++) old.set("n", String(i)); // wraps around the four slots
    old.set("state", "downloading");
    const s = open(flash);
    expect([s.get("n"), s.get("state")]).toEqual(["5", "downloading"]);
    for (let i = 0; i < 20; i++) s.set("n", `new ${i}`);
    expect(open(flash).get("n")).toBe("new 19");
    expect(open(flash).get("state")).toBe("downloading");

    // A torn old-format commit leaves the old-format record before it in force.
    const v1 = NorFlash.memory(4 * SECTOR_SIZE);
    const w = new JournalStoreV1(new SimRawFlash(v1, part), 1);
    w.set("n", "kept");
    v1.armFaults({ tear: { op: 2, fraction: 0.9 } }); // erase lands, the record write is torn
    expect(() => w.set("n", "lost")).toThrow(PowerCutError);
    v1.powerOn();
    expect(open(v1).get("n")).toBe("kept");
  });
});

describe("JournalStore power safety", () => {
  // Commits of varied sizes (records of ~100 B to ~1.7 KiB), so records pack 2 to 20 per slot and slots change
  // both on a full slot and on the reboot before the first commit.
  const SIZES = [40, 900, 1600, 70, 1200, 300, 1500, 20, 800, 1700, 60, 1000, 1400, 200, 900, 1600];
  const valueOf = (i: number) => String.fromCharCode(97 + (i % 26)).repeat(SIZES[i % SIZES.length]!);
  const commit = (s: JournalStore, i: number) => (i % 5 === 4 ? s.delete("b") : s.set(i % 3 === 0 ? "b" : "a", valueOf(i)));

  /** The map after the base history plus commits [0, n) of the sweep, computed without the store. */
  function expectedAfter(n: number): Record<string, string> {
    const map: Record<string, string> = { base: "x" };
    for (let i = 0; i < n; i++) {
      if (i % 5 === 4) delete map.b;
      else map[i % 3 === 0 ? "b" : "a"] = valueOf(i);
    }
    return map;
  }
  const snapshot = (s: JournalStore) => Object.fromEntries(["base", "a", "b"].filter((k) => s.get(k) !== undefined).map((k) => [k, s.get(k)!]));

  const COMMITS = 24;
  const base = NorFlash.memory(4 * SECTOR_SIZE);
  const seed = open(base);
  for (let i = 0; i < 9; i++) seed.set("base", i === 8 ? "x" : `seed ${i}`); // the journal already wrapped once

  it("a power cut after, or a tear during, any operation of a run of commits leaves the previous or the new map", () => {
    const reference: FlashOp[] = [];
    const refFlash = NorFlash.memoryCopy(base, { onOp: (op) => reference.push(op) });
    const ref = open(refFlash);
    const commitOfOp: number[] = [];
    for (let i = 0; i < COMMITS; i++) {
      const before = reference.length;
      commit(ref, i);
      for (let k = before; k < reference.length; k++) commitOfOp.push(i);
    }
    expect(snapshot(open(refFlash))).toEqual(expectedAfter(COMMITS));
    const erases = reference.filter((op) => op.kind === "erase").length;
    expect(erases).toBeGreaterThanOrEqual(6); // several slot changes inside the sweep
    expect(erases).toBeLessThan(COMMITS / 2);

    let points = 0;
    for (let n = 1; n <= reference.length; n++) {
      const op = reference[n - 1]!;
      const faults: FaultPlan[] = [{ cutAfter: n }, ...[0, 0.05, 0.5, 0.95].map((fraction) => ({ tear: { op: n, fraction } }))];
      for (const fault of faults) {
        const flash = NorFlash.memoryCopy(base);
        const store = open(flash);
        flash.armFaults(fault);
        let interrupted = -1;
        for (let i = 0; i < COMMITS && interrupted < 0; i++) {
          try {
            commit(store, i);
          } catch (e) {
            expect(e).toBeInstanceOf(PowerCutError);
            interrupted = i;
          }
        }
        expect(interrupted).toBe(commitOfOp[n - 1]);
        flash.powerOn();
        const after = open(flash);
        // Only a write that landed whole makes its commit count.
        const landed = fault.cutAfter !== undefined && op.kind === "write";
        expect(snapshot(after), `fault ${JSON.stringify(fault)} at ${op.kind} of commit ${interrupted}`).toEqual(expectedAfter(interrupted + (landed ? 1 : 0)));
        // The next boot carries on through every slot (twice) without writing over bytes it did not erase
        // (the strict flash throws if it does), and its records load.
        for (let i = 0; i < COMMITS; i++) commit(after, i);
        expect(snapshot(open(flash))).toEqual(expectedAfter(COMMITS));
        points++;
      }
    }
    expect(points).toBe(reference.length * 5);
  });
});
