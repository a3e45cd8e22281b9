import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FlashError, NorFlash, PowerCutError, SECTOR_SIZE } from "../host-sim/flash/nor-flash";

const dir = mkdtempSync(join(tmpdir(), "nor-flash-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (...b: number[]) => new Uint8Array(b);

describe("NOR flash semantics", () => {
  it("starts erased to 0xFF and erases whole 4 KiB sectors", () => {
    const f = NorFlash.memory(4 * SECTOR_SIZE);
    expect(f.read(0, f.size).every((b) => b === 0xff)).toBe(true);
    f.write(SECTOR_SIZE + 10, bytes(1, 2, 3));
    f.eraseSector(SECTOR_SIZE);
    expect(f.read(SECTOR_SIZE + 10, 3)).toEqual(bytes(0xff, 0xff, 0xff));
    expect(() => f.eraseSector(100)).toThrow(FlashError);
  });

  it("refuses to write over data that is not erased, and lands nothing", () => {
    const f = NorFlash.memory(SECTOR_SIZE);
    f.write(0, bytes(0xf0));
    expect(() => f.write(0, bytes(0x0f, 0x55))).toThrowError(/non-erased/);
    expect(f.read(0, 2)).toEqual(bytes(0xf0, 0xff));
    expect(f.stats.writes).toBe(1);
  });

  it("in non-strict mode a write can only clear bits (AND), like real NOR", () => {
    const f = NorFlash.memory(SECTOR_SIZE, { strictWrites: false });
    f.write(0, bytes(0xf0));
    f.write(0, bytes(0x3c));
    expect(f.read(0, 1)).toEqual(bytes(0x30));
  });

  it("counts reads, writes and sector erases", () => {
    const f = NorFlash.memory(8 * SECTOR_SIZE);
    f.eraseRange(0, 3 * SECTOR_SIZE);
    f.write(0, new Uint8Array(100).fill(0));
    f.read(0, 10);
    expect(f.stats).toEqual({ reads: 1, bytesRead: 10, writes: 1, bytesWritten: 100, erases: 3 });
    expect(f.opCount).toBe(4);
  });

  it("rejects out-of-range access and odd geometry", () => {
    const f = NorFlash.memory(SECTOR_SIZE);
    expect(() => f.read(SECTOR_SIZE - 1, 2)).toThrowError(/outside flash/);
    expect(() => f.write(-1, bytes(0))).toThrowError(/outside flash/);
    expect(() => NorFlash.memory(1000)).toThrowError(/multiple of the 4 KiB sector/);
  });

  it("file-backed flash survives close and reopen (a reboot or another process)", () => {
    const path = join(dir, "flash.bin");
    const a = NorFlash.create(path, 16 * SECTOR_SIZE);
    a.write(0x1234, bytes(0xde, 0xad));
    a.close();
    const b = NorFlash.open(path);
    expect(b.size).toBe(16 * SECTOR_SIZE);
    expect(b.read(0x1234, 2)).toEqual(bytes(0xde, 0xad));
    expect(b.read(0x1236, 1)).toEqual(bytes(0xff));
    b.close();
    expect(() => NorFlash.open(join(dir, "missing.bin"))).toThrowError(/not found/);
  });
});

describe("fault hooks", () => {
  it("cuts power after operation N: N lands, nothing after it does, until power returns", () => {
    const f = NorFlash.memory(4 * SECTOR_SIZE);
    f.write(0, bytes(0)); // before arming: not counted by the plan
    f.armFaults({ cutAfter: 2 });
    f.write(1, bytes(1));
    expect(() => f.write(2, bytes(2))).toThrow(PowerCutError);
    expect(f.isPowered).toBe(false);
    expect(() => f.write(3, bytes(3))).toThrowError(/power cut/);
    expect(() => f.read(0, 1)).toThrowError(/power cut/);
    f.powerOn();
    expect(f.read(0, 4)).toEqual(bytes(0, 1, 2, 0xff));
    f.write(3, bytes(3)); // faults are disarmed after power returns
    expect(f.read(3, 1)).toEqual(bytes(3));
  });

  it("counts each sector of a multi-sector erase as its own operation", () => {
    const f = NorFlash.memory(4 * SECTOR_SIZE);
    f.write(0, new Uint8Array(4 * SECTOR_SIZE).fill(0));
    f.armFaults({ cutAfter: 2 });
    expect(() => f.eraseRange(0, 4 * SECTOR_SIZE)).toThrow(PowerCutError);
    f.powerOn();
    const d = f.read(0, 4 * SECTOR_SIZE);
    expect(d.subarray(0, 2 * SECTOR_SIZE).every((b) => b === 0xff)).toBe(true);
    expect(d.subarray(2 * SECTOR_SIZE).every((b) => b === 0)).toBe(true);
  });

  it("tears a write: only a prefix of its bytes lands", () => {
    const f = NorFlash.memory(SECTOR_SIZE);
    f.armFaults({ tear: { op: 1, fraction: 0.25 } });
    const err = (() => {
      try {
        f.write(0, new Uint8Array(16).fill(0xaa));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(PowerCutError);
    expect((err as PowerCutError).torn).toBe(true);
    f.powerOn();
    const d = f.read(0, 16);
    expect(Array.from(d.subarray(0, 4))).toEqual([0xaa, 0xaa, 0xaa, 0xaa]);
    expect(d.subarray(4).every((b) => b === 0xff)).toBe(true);
  });

  it("tears an erase: the sector is left half-erased", () => {
    const f = NorFlash.memory(2 * SECTOR_SIZE);
    f.write(0, new Uint8Array(SECTOR_SIZE).fill(0x11));
    f.armFaults({ tear: { op: 1 } });
    expect(() => f.eraseSector(0)).toThrow(PowerCutError);
    f.powerOn();
    const d = f.read(0, SECTOR_SIZE);
    expect(d.subarray(0, SECTOR_SIZE / 2).every((b) => b === 0xff)).toBe(true);
    expect(d.subarray(SECTOR_SIZE / 2).every((b) => b === 0x11)).toBe(true);
  });

  it("reports each operation to an observer", () => {
    const ops: string[] = [];
    const f = NorFlash.memory(2 * SECTOR_SIZE, { onOp: (op) => ops.push(`${op.kind}@${op.offset.toString(16)}`) });
    f.eraseSector(SECTOR_SIZE);
    f.write(SECTOR_SIZE, bytes(1, 2));
    expect(ops).toEqual(["erase@1000", "write@1000"]);
  });
});

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0; // toEqual is slow on big arrays

describe("sparse backing", () => {
  it("behaves exactly like a full in-memory flash, storing only written sectors", () => {
    const size = 64 * SECTOR_SIZE;
    const full = NorFlash.memory(size, { strictWrites: false });
    const sparse = NorFlash.sparse(size, { strictWrites: false });
    expect(sparse.residentBytes).toBe(0);
    let x = 7;
    const rnd = (n: number) => ((x = (x * 1103515245 + 12345) >>> 0), x % n);
    for (let i = 0; i < 400; i++) {
      const op = rnd(3);
      if (op === 0) {
        const s = rnd(64) * SECTOR_SIZE;
        full.eraseSector(s);
        sparse.eraseSector(s);
      } else {
        const offset = rnd(size - 9000);
        const data = Uint8Array.from({ length: 1 + rnd(9000) }, () => rnd(256));
        full.write(offset, data);
        sparse.write(offset, data);
      }
      const at = rnd(size - 5000);
      expect(same(sparse.read(at, 5000), full.read(at, 5000))).toBe(true);
    }
    expect(same(sparse.read(0, size), full.read(0, size))).toBe(true);
    expect(sparse.stats).toEqual(full.stats);
    expect(sparse.residentBytes).toBeLessThanOrEqual(size);
  });

  it("keeps nothing for erased space and drops a sector erased back to 0xFF", () => {
    const f = NorFlash.sparse(1024 * SECTOR_SIZE); // 4 MiB, nothing allocated
    expect(f.read(0x3ff000, 4)).toEqual(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    f.write(0x1ffe, new Uint8Array([1, 2, 3, 4])); // straddles two sectors
    expect(f.residentBytes).toBe(2 * SECTOR_SIZE);
    expect(f.read(0x1ffc, 8)).toEqual(new Uint8Array([0xff, 0xff, 1, 2, 3, 4, 0xff, 0xff]));
    expect(() => f.write(0x1fff, new Uint8Array([9]))).toThrow(FlashError); // still strict
    f.eraseSector(0x1000);
    expect(f.residentBytes).toBe(SECTOR_SIZE);
    expect(f.read(0x2000, 2)).toEqual(new Uint8Array([3, 4]));
    f.write(0x5000, new Uint8Array(SECTOR_SIZE).fill(0xff)); // 0xFF over erased space allocates nothing
    expect(f.residentBytes).toBe(SECTOR_SIZE);
  });

  it("supports the same power cuts and tears", () => {
    const f = NorFlash.sparse(16 * SECTOR_SIZE);
    f.write(0, new Uint8Array(SECTOR_SIZE).fill(0));
    f.armFaults({ tear: { op: 1, fraction: 0.25 } });
    expect(() => f.eraseSector(0)).toThrow(PowerCutError);
    f.powerOn();
    const s = f.read(0, SECTOR_SIZE);
    expect(s.subarray(0, SECTOR_SIZE / 4).every((b) => b === 0xff)).toBe(true);
    expect(s.subarray(SECTOR_SIZE / 4).every((b) => b === 0)).toBe(true);
  });
});
