// Pure parts of bench-moddable.mjs (kept apart so test/bench-moddable.test.ts runs them without the SDK):
// options, the prerequisite check, the flash file the Linux stand-ins read, and the bisection for the
// smallest fixed-size XS machine.
import { existsSync } from "node:fs";
import { join } from "node:path";

/** Slots counted as on the ESP32 (a 32-bit txSlot), whatever the host's slot size. */
export const ESP32_SLOT_BYTES = 16;
export const SECTOR = 4096;
const IMAGE_SIZES = { "1m": 1 << 20, "4m": 4 << 20 };

export const DEFAULTS = {
  sizes: ["1m", "4m"],
  /** Bisection granularity: chunks in bytes, slots in count (few steps: a 4 MiB run takes about a minute). */
  chunkStep: 4096,
  slotStep: 256,
  /** The bisection's range: the upper end must fit every run (checked first), the lower end none. */
  roomyChunks: 256 << 10,
  roomySlots: 16384,
  minChunks: 16 << 10,
  minSlots: 4096,
  bisect: true,
  keep: false,
};

export function usage() {
  return "usage: npm run bench:moddable [-- --sizes 1m,4m] [--chunk-step BYTES] [--slot-step N] [--no-bisect] [--keep]";
}

export function parseArgs(argv) {
  const options = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value (${usage()})`);
      return v;
    };
    const positive = (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${arg}: not a positive integer: ${v}`);
      return n;
    };
    if (arg === "--sizes") {
      options.sizes = value().split(",").map((s) => s.trim().toLowerCase()).filter((s) => s);
      const unknown = options.sizes.filter((s) => !(s in IMAGE_SIZES));
      if (unknown.length || options.sizes.length === 0) throw new Error(`--sizes: one or more of ${Object.keys(IMAGE_SIZES).join(", ")} (got ${unknown.join(", ") || "none"})`);
    } else if (arg === "--chunk-step") options.chunkStep = positive(value());
    else if (arg === "--slot-step") options.slotStep = positive(value());
    else if (arg === "--no-bisect") options.bisect = false;
    else if (arg === "--keep") options.keep = true;
    else throw new Error(`unknown option ${arg} (${usage()})`);
  }
  return options;
}

export function imageBytes(size) {
  return IMAGE_SIZES[size];
}

/**
 * What the bench needs and lacks, as one line, or null when it can run: $MODDABLE, the SDK's Linux host tools,
 * and TypeScript 6 as `tsc` (mcconfig's tsconfig needs it). `tscMajor` is the major version found, or null.
 */
export function missingPrerequisite(env, tscMajor, exists = existsSync) {
  const setup = 'see README "Benchmarks" > "XS memory on Moddable\'s Linux runtime"';
  if (!env.MODDABLE) return `bench:moddable skipped: needs MODDABLE set to a Moddable SDK 8.2.3 checkout with its Linux host tools built (${setup})`;
  const tools = join(env.MODDABLE, "build", "bin", "lin", "release");
  if (!exists(join(tools, "mcconfig")) || !exists(join(tools, "xsl")))
    return `bench:moddable skipped: no Moddable host tools in ${tools} (build them: cd $MODDABLE/build/makefiles/lin && make; ${setup})`;
  if (tscMajor === null || tscMajor < 6)
    return `bench:moddable skipped: mcconfig needs TypeScript 6 or later as \`tsc\` on PATH (found ${tscMajor === null ? "none" : tscMajor}; ${setup})`;
  return null;
}

/** The flash file of bench/moddable/bench-flash.h: header, ota_0 holding `image` (valid, booted), ota_1, agent. */
export function benchFlash(image, slotSize, agentSize) {
  if (slotSize % SECTOR || agentSize % SECTOR || image.length > slotSize) throw new Error("bench flash: sizes must be sectors, the image must fit");
  const flash = Buffer.alloc(SECTOR + 2 * slotSize + agentSize, 0xff);
  flash.fill(0, 0, SECTOR);
  flash.write("OTABENCH", 0, "latin1");
  flash.writeUInt32LE(slotSize, 8);
  flash.writeUInt32LE(agentSize, 12);
  flash[16] = 0; // boot: ota_0
  flash[17] = 3; // ota_0 valid
  flash[18] = 0; // ota_1 no otadata entry
  flash[19] = 0; // reset reason: power on
  Buffer.from(image).copy(flash, SECTOR);
  return flash;
}

/**
 * Smallest value in [lo, hi] (on a grid of `step` above lo) for which `passes` holds, assuming it holds for every
 * larger value. Checks hi first; returns null when even hi fails. `passes` is async (a real run).
 */
export async function bisect(lo, hi, step, passes) {
  if (!(step > 0) || lo > hi) throw new Error("bisect: needs lo <= hi and step > 0");
  if (!(await passes(hi))) return null;
  let bad = lo - step; // treated as failing: the grid starts at lo
  let good = hi;
  while (good - bad > step) {
    const mid = bad + Math.max(1, Math.floor((good - bad) / step / 2)) * step;
    if (await passes(mid)) good = mid;
    else bad = mid;
  }
  return good;
}

/** The machine's size as on the ESP32: chunk bytes plus slots at 16 bytes. */
export function machineBytes(chunks, slots) {
  return chunks + slots * ESP32_SLOT_BYTES;
}

/**
 * The smallest fixed-size machine `run({chunks, slots})` completes in: chunks bisected with roomy slots, slots with
 * roomy chunks, then the pair checked together (one step more of each until it passes, at most 3 times).
 */
export async function smallestMachine(run, options) {
  const o = { ...DEFAULTS, ...options };
  const chunks = await bisect(o.minChunks, o.roomyChunks, o.chunkStep, (c) => run({ chunks: c, slots: o.roomySlots }));
  const slots = await bisect(o.minSlots, o.roomySlots, o.slotStep, (s) => run({ chunks: o.roomyChunks, slots: s }));
  if (chunks === null || slots === null) return null;
  for (let extra = 0; extra <= 3; extra++) {
    const machine = { chunks: chunks + extra * o.chunkStep, slots: slots + extra * o.slotStep };
    if (await run(machine)) return { ...machine, bytes: machineBytes(machine.chunks, machine.slots), extraSteps: extra };
  }
  return null;
}

/** High-water above idle of one update run's first boot (the download and install), slots at 16 bytes. */
export function aboveIdle(boot) {
  const chunks = boot.peakChunks - boot.idleChunks;
  const slots = boot.peakSlots - boot.idleSlots;
  return { chunks, slots, bytes: machineBytes(chunks, slots) };
}

export function kib(bytes) {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}
