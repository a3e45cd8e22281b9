// A NOR flash model with the properties ESP-IDF's code relies on: 4 KiB erase sectors that erase to 0xFF,
// writes that can only clear bits, and power that can fail between (or in the middle of) operations.
import { closeSync, existsSync, fstatSync, openSync, readSync, writeSync } from "node:fs";

export const SECTOR_SIZE = 0x1000;

/** The simulated device lost power. Everything after the faulting operation did not happen. */
export class PowerCutError extends Error {
  constructor(readonly op: number, readonly torn: boolean) {
    super(`power cut ${torn ? "during" : "after"} flash operation ${op}`);
    this.name = "PowerCutError";
  }
}

export type FlashErrorCode = "out-of-range" | "unaligned" | "write-not-erased" | "powered-off";

/** A programming error against the flash contract (what ESP-IDF would report or what would corrupt data). */
export class FlashError extends Error {
  constructor(readonly code: FlashErrorCode, message: string) {
    super(message);
    this.name = "FlashError";
  }
}

/** Fault plan; operation numbers count mutating operations (one sector erase or one write) from 1 since arming. */
export interface FaultPlan {
  /** Operation `cutAfter` lands completely, then power fails. */
  cutAfter?: number;
  /** Operation `tear.op` lands only partly, then power fails: a write keeps a prefix of its bytes, an erase
   * leaves a prefix of the sector at 0xFF and the rest as it was. `fraction` of the bytes land (default 0.5). */
  tear?: { op: number; fraction?: number };
}

export interface FlashStats {
  reads: number;
  bytesRead: number;
  writes: number;
  bytesWritten: number;
  erases: number;
}

export type FlashOp =
  | { kind: "write"; n: number; offset: number; length: number }
  | { kind: "erase"; n: number; offset: number; length: number };

/** Where the bytes live: memory for fast tests, a file to survive reboots and separate processes. */
interface Backing {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
  /** The bytes in place, without a copy, where the backing can (for checks that only look). */
  view?(offset: number, length: number): Uint8Array;
  write(offset: number, data: Uint8Array): void;
  close(): void;
}

class MemoryBacking implements Backing {
  constructor(private readonly bytes: Uint8Array) {}
  get size() {
    return this.bytes.length;
  }
  read(offset: number, length: number) {
    return this.bytes.slice(offset, offset + length);
  }
  view(offset: number, length: number) {
    return this.bytes.subarray(offset, offset + length);
  }
  write(offset: number, data: Uint8Array) {
    this.bytes.set(data, offset);
  }
  close() {}
}

/** Only sectors that were ever written are stored; the rest read as erased (0xFF). A sector erased back to
 * all 0xFF is dropped again, so a thousand 4 MB devices cost only what their images occupy. */
class SparseBacking implements Backing {
  private readonly sectors = new Map<number, Uint8Array>();
  constructor(readonly size: number) {}
  /** Bytes held in memory (stored sectors × 4 KiB). */
  get storedBytes() {
    return this.sectors.size * SECTOR_SIZE;
  }
  read(offset: number, length: number) {
    const out = new Uint8Array(length).fill(0xff);
    for (let at = offset; at < offset + length; ) {
      const index = Math.floor(at / SECTOR_SIZE);
      const within = at - index * SECTOR_SIZE;
      const n = Math.min(SECTOR_SIZE - within, offset + length - at);
      const sector = this.sectors.get(index);
      if (sector) out.set(sector.subarray(within, within + n), at - offset);
      at += n;
    }
    return out;
  }
  write(offset: number, data: Uint8Array) {
    for (let at = offset; at < offset + data.length; ) {
      const index = Math.floor(at / SECTOR_SIZE);
      const within = at - index * SECTOR_SIZE;
      const n = Math.min(SECTOR_SIZE - within, offset + data.length - at);
      const piece = data.subarray(at - offset, at - offset + n);
      let sector = this.sectors.get(index);
      if (!sector) {
        if (isErased(piece)) {
          at += n;
          continue; // 0xFF over an erased sector changes nothing
        }
        sector = new Uint8Array(SECTOR_SIZE).fill(0xff);
        this.sectors.set(index, sector);
      }
      sector.set(piece, within);
      if (n === SECTOR_SIZE && isErased(piece)) this.sectors.delete(index); // a whole-sector erase
      at += n;
    }
  }
  close() {
    this.sectors.clear();
  }
}

class FileBacking implements Backing {
  private fd: number;
  readonly size: number;
  constructor(readonly path: string) {
    this.fd = openSync(path, "r+");
    this.size = fstatSync(this.fd).size;
  }
  read(offset: number, length: number) {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, offset + done);
      if (n === 0) throw new FlashError("out-of-range", `short read at 0x${(offset + done).toString(16)}`);
      done += n;
    }
    return out;
  }
  write(offset: number, data: Uint8Array) {
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done, data.length - done, offset + done);
  }
  close() {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

export interface NorFlashOptions {
  /** Writing over bytes that are not 0xFF is an error (default). When false, bits are ANDed as real NOR does. */
  strictWrites?: boolean;
  /** Called after each mutating operation lands (fully or torn). */
  onOp?: (op: FlashOp) => void;
}

export class NorFlash {
  readonly stats: FlashStats = { reads: 0, bytesRead: 0, writes: 0, bytesWritten: 0, erases: 0 };
  /** Mutating operations since creation/open (not reset by arming faults). */
  opCount = 0;
  private faultOps = 0;
  private plan: FaultPlan = {};
  private powered = true;
  private readonly strict: boolean;
  /** Per sector, the opCount of the last write or erase that touched it (0: none since this object exists). */
  private readonly sectorStamps: Uint32Array;

  private constructor(private readonly backing: Backing, private readonly options: NorFlashOptions = {}) {
    this.strict = options.strictWrites ?? true;
    this.sectorStamps = new Uint32Array(Math.ceil(backing.size / SECTOR_SIZE));
  }

  /** The last write or erase that touched [offset, offset+length): equal stamps mean equal bytes. */
  rangeStamp(offset: number, length: number): number {
    let stamp = 0;
    const last = Math.floor((offset + Math.max(1, length) - 1) / SECTOR_SIZE);
    for (let s = Math.floor(offset / SECTOR_SIZE); s <= last; s++) stamp = Math.max(stamp, this.sectorStamps[s]!);
    return stamp;
  }

  private touch(offset: number, length: number) {
    const last = Math.floor((offset + length - 1) / SECTOR_SIZE);
    for (let s = Math.floor(offset / SECTOR_SIZE); s <= last; s++) this.sectorStamps[s] = this.opCount;
  }

  static memory(size: number, options?: NorFlashOptions): NorFlash {
    checkGeometry(size);
    return new NorFlash(new MemoryBacking(new Uint8Array(size).fill(0xff)), options);
  }

  /** In memory, storing only the sectors that hold data (unwritten sectors read as 0xFF): for fleets. */
  static sparse(size: number, options?: NorFlashOptions): NorFlash {
    checkGeometry(size);
    return new NorFlash(new SparseBacking(size), options);
  }

  /** An in-memory copy of another flash's current contents (for forking a scenario). */
  static memoryCopy(source: NorFlash, options?: NorFlashOptions): NorFlash {
    return new NorFlash(new MemoryBacking(source.backing.read(0, source.size)), options);
  }

  /** Creates (or overwrites) a file-backed flash, fully erased. */
  static create(path: string, size: number, options?: NorFlashOptions): NorFlash {
    checkGeometry(size);
    const fd = openSync(path, "w");
    try {
      const chunk = new Uint8Array(0x10000).fill(0xff);
      for (let off = 0; off < size; off += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, size - off), off);
    } finally {
      closeSync(fd);
    }
    return NorFlash.open(path, options);
  }

  static open(path: string, options?: NorFlashOptions): NorFlash {
    if (!existsSync(path)) throw new FlashError("out-of-range", `flash file not found: ${path}`);
    const backing = new FileBacking(path);
    checkGeometry(backing.size);
    return new NorFlash(backing, options);
  }

  get size() {
    return this.backing.size;
  }

  /** Bytes of host memory the contents take: the full size, except for a sparse flash. */
  get residentBytes(): number {
    return this.backing instanceof SparseBacking ? this.backing.storedBytes : this.backing.size;
  }

  get isPowered() {
    return this.powered;
  }

  /** Arms a fault plan; operation numbers count from the next mutating operation (1). */
  armFaults(plan: FaultPlan) {
    this.plan = { ...plan };
    this.faultOps = 0;
  }

  disarmFaults() {
    this.plan = {};
  }

  /** Power comes back (the contents are whatever landed). Faults stay disarmed until armed again. */
  powerOn() {
    this.powered = true;
    this.plan = {};
  }

  read(offset: number, length: number): Uint8Array {
    this.checkPower();
    this.checkRange(offset, length);
    this.stats.reads++;
    this.stats.bytesRead += length;
    return this.backing.read(offset, length);
  }

  write(offset: number, data: Uint8Array) {
    this.checkPower();
    this.checkRange(offset, data.length);
    if (data.length === 0) return;
    const current = this.backing.view ? this.backing.view(offset, data.length) : this.backing.read(offset, data.length);
    let next = data;
    if (!isErased(current)) {
      if (this.strict) {
        const i = current.findIndex((b) => b !== 0xff);
        throw new FlashError(
          "write-not-erased",
          `write over non-erased byte at 0x${(offset + i).toString(16)} (0x${current[i]!.toString(16)}); erase the sector first`,
        );
      }
      next = current.map((b, i) => b & data[i]!); // NOR programming can only clear bits
    }
    const n = this.beginOp();
    const keep = this.tornLength(n, data.length);
    this.touch(offset, data.length);
    this.backing.write(offset, keep === undefined ? next : next.subarray(0, keep));
    this.stats.writes++;
    this.stats.bytesWritten += keep ?? data.length;
    this.endOp({ kind: "write", n: this.opCount, offset, length: data.length }, n, keep !== undefined);
  }

  /** Erases one 4 KiB sector: a single operation for the fault plan. */
  eraseSector(offset: number) {
    this.checkPower();
    if (offset % SECTOR_SIZE !== 0) throw new FlashError("unaligned", `erase at 0x${offset.toString(16)} is not sector aligned`);
    this.checkRange(offset, SECTOR_SIZE);
    const n = this.beginOp();
    const keep = this.tornLength(n, SECTOR_SIZE);
    this.touch(offset, SECTOR_SIZE);
    this.backing.write(offset, keep === undefined ? ERASED : ERASED.subarray(0, keep));
    this.stats.erases++;
    this.endOp({ kind: "erase", n: this.opCount, offset, length: SECTOR_SIZE }, n, keep !== undefined);
  }

  /** Erases whole sectors covering [offset, offset+length); each sector is its own operation, as power can
   * fail between them. */
  eraseRange(offset: number, length: number) {
    if (offset % SECTOR_SIZE !== 0 || length % SECTOR_SIZE !== 0) {
      throw new FlashError("unaligned", `erase range 0x${offset.toString(16)}+0x${length.toString(16)} is not sector aligned`);
    }
    this.checkRange(offset, length);
    for (let s = offset; s < offset + length; s += SECTOR_SIZE) this.eraseSector(s);
  }

  close() {
    this.backing.close();
  }

  private beginOp(): number {
    this.opCount++;
    return ++this.faultOps;
  }

  private tornLength(n: number, length: number): number | undefined {
    const tear = this.plan.tear;
    if (!tear || tear.op !== n) return undefined;
    const fraction = tear.fraction ?? 0.5;
    return Math.max(0, Math.min(length - 1, Math.floor(length * fraction)));
  }

  private endOp(op: FlashOp, n: number, torn: boolean) {
    this.options.onOp?.(op);
    if (torn || this.plan.cutAfter === n) {
      this.powered = false;
      throw new PowerCutError(op.n, torn);
    }
  }

  private checkPower() {
    if (!this.powered) throw new FlashError("powered-off", "flash accessed after a power cut; call powerOn() (reboot) first");
  }

  private checkRange(offset: number, length: number) {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new FlashError("out-of-range", `access 0x${offset.toString(16)}+0x${length.toString(16)} outside flash of 0x${this.size.toString(16)} bytes`);
    }
  }
}

const ERASED = Buffer.alloc(SECTOR_SIZE, 0xff);

/** All 0xFF? Compared natively a sector at a time: this is on the hot path of every simulated write. */
function isErased(bytes: Uint8Array): boolean {
  for (let at = 0; at < bytes.length; at += SECTOR_SIZE) {
    const piece = bytes.subarray(at, Math.min(bytes.length, at + SECTOR_SIZE));
    if (Buffer.compare(piece, ERASED.subarray(0, piece.length)) !== 0) return false;
  }
  return true;
}

function checkGeometry(size: number) {
  if (!Number.isInteger(size) || size <= 0 || size % SECTOR_SIZE !== 0) {
    throw new FlashError("unaligned", `flash size ${size} is not a positive multiple of the 4 KiB sector`);
  }
}
