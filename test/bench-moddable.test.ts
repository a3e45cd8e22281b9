// The parts of `npm run bench:moddable` that run without the Moddable SDK (the real run needs it and is not part
// of npm test): options, the one-line skip, the stand-in flash layout, and the bisection on a fake runner.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
// @ts-expect-error -- plain .mjs script without types
import * as lib from "../scripts/bench-moddable-lib.mjs";

interface Machine {
  chunks: number;
  slots: number;
}
interface Boot {
  idleChunks: number;
  idleSlots: number;
  peakChunks: number;
  peakSlots: number;
}
const { DEFAULTS, parseArgs, missingPrerequisite, benchFlash, bisect, smallestMachine, machineBytes, aboveIdle } = lib as {
  DEFAULTS: Record<string, unknown> & { minChunks: number; roomyChunks: number; chunkStep: number; minSlots: number; roomySlots: number; slotStep: number };
  parseArgs(argv: string[]): Record<string, unknown>;
  missingPrerequisite(env: Record<string, string | undefined>, tscMajor: number | null, exists?: (p: string) => boolean): string | null;
  benchFlash(image: Uint8Array, slotSize: number, agentSize: number): Buffer;
  bisect(lo: number, hi: number, step: number, passes: (x: number) => Promise<boolean>): Promise<number | null>;
  smallestMachine(run: (m: Machine) => Promise<boolean>, options?: object): Promise<(Machine & { bytes: number; extraSteps: number }) | null>;
  machineBytes(chunks: number, slots: number): number;
  aboveIdle(boot: Boot): { chunks: number; slots: number; bytes: number };
};

describe("bench:moddable options", () => {
  it("defaults to the 1 MiB and 4 MiB updates with bisection", () => {
    expect(parseArgs([])).toEqual(DEFAULTS);
    expect(parseArgs(["--sizes", "4M", "--chunk-step", "1024", "--slot-step", "64", "--no-bisect"])).toMatchObject({ sizes: ["4m"], chunkStep: 1024, slotStep: 64, bisect: false });
  });

  it("refuses what it does not know, naming it", () => {
    expect(() => parseArgs(["--sizes", "2m"])).toThrow(/--sizes: .*got 2m/);
    expect(() => parseArgs(["--chunk-step", "0"])).toThrow(/--chunk-step: not a positive integer: 0/);
    expect(() => parseArgs(["--slot-step"])).toThrow(/--slot-step needs a value/);
    expect(() => parseArgs(["--fast"])).toThrow(/unknown option --fast/);
  });
});

describe("bench:moddable prerequisites", () => {
  const tools = (path: string) => path.endsWith("/build/bin/lin/release/mcconfig") || path.endsWith("/build/bin/lin/release/xsl");
  it("names the first thing missing: MODDABLE, the SDK's Linux host tools, TypeScript 6", () => {
    expect(missingPrerequisite({}, 6, tools)).toMatch(/^bench:moddable skipped: needs MODDABLE set to a Moddable SDK 8\.2\.3/);
    expect(missingPrerequisite({ MODDABLE: "/sdk" }, 6, () => false)).toMatch(/no Moddable host tools in \/sdk\/build\/bin\/lin\/release/);
    expect(missingPrerequisite({ MODDABLE: "/sdk" }, 5, tools)).toMatch(/TypeScript 6 or later .*found 5/);
    expect(missingPrerequisite({ MODDABLE: "/sdk" }, null, tools)).toMatch(/found none/);
    expect(missingPrerequisite({ MODDABLE: "/sdk" }, 6, tools)).toBeNull();
  });

  it("without MODDABLE the script prints one line and exits 0; a bad option is one line and exit 1", () => {
    const env = { ...process.env };
    delete env.MODDABLE;
    const skip = spawnSync(process.execPath, ["scripts/bench-moddable.mjs"], { env, encoding: "utf8" });
    expect(skip.status).toBe(0);
    expect(skip.stdout.trim().split("\n")).toEqual([expect.stringMatching(/^bench:moddable skipped: needs MODDABLE/)]);
    expect(skip.stderr).toBe("");
    const bad = spawnSync(process.execPath, ["scripts/bench-moddable.mjs", "--sizes", "8m"], { env, encoding: "utf8" });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^bench:moddable: --sizes/)]);
  });
});

const root = join(import.meta.dirname, "..");

describe("bench:moddable stand-in natives", () => {
  it("espota-lin.c defines every host function device/esp32/native/espota.js binds (else the link fails)", () => {
    const bound = [...readFileSync(join(root, "device/esp32/native/espota.js"), "utf8").matchAll(/@ "(xs_\w+)"/g)].map((m) => m[1]);
    const defined = new Set([...readFileSync(join(root, "bench/moddable/espota-lin.c"), "utf8").matchAll(/^void (xs_\w+)\(xsMachine \*the\)/gm)].map((m) => m[1]));
    expect(bound.length).toBeGreaterThan(20);
    expect(bound.filter((name) => !defined.has(name))).toEqual([]);
  });
});

describe("bench:moddable stand-in flash", () => {
  it("lays out the header bench-flash.h reads, ota_0 with the image, and erased ota_1 and agent partitions", () => {
    const image = new Uint8Array([0xe9, 1, 2, 3]);
    const flash = benchFlash(image, 8192, 4096);
    expect(flash.length).toBe(4096 + 2 * 8192 + 4096);
    expect(flash.subarray(0, 8).toString("latin1")).toBe("OTABENCH");
    expect([flash.readUInt32LE(8), flash.readUInt32LE(12)]).toEqual([8192, 4096]);
    expect([...flash.subarray(16, 20)]).toEqual([0, 3, 0, 0]); // boot ota_0, ota_0 valid, ota_1 none, power-on reset
    expect([...flash.subarray(4096, 4100)]).toEqual([...image]);
    expect(flash.subarray(4100).every((b) => b === 0xff)).toBe(true);
    expect(() => benchFlash(new Uint8Array(8193), 8192, 4096)).toThrow(/must fit/);
  });
});

describe("bench:moddable bisection", () => {
  it("finds the smallest passing value on the step grid, in a logarithmic number of runs", async () => {
    for (const threshold of [1, 16, 17, 100, 255, 256]) {
      const tried: number[] = [];
      const found = await bisect(16, 256, 16, async (x) => (tried.push(x), x >= threshold));
      expect(found).toBe(Math.max(16, Math.ceil((threshold - 16) / 16) * 16 + 16));
      expect(tried[0]).toBe(256); // the upper end is checked first
      expect(tried.length).toBeLessThanOrEqual(6); // 1 + ceil(log2(16 grid points))
    }
  });

  it("returns null when even the upper end fails", async () => {
    expect(await bisect(16, 256, 16, async () => false)).toBeNull();
  });

  it("bisects chunks and slots apart, then grows both until the pair completes together", async () => {
    const runs: Machine[] = [];
    // Needs 40 KiB of chunks and 5,000 slots, and (together) 130,000 bytes at 16 B a slot.
    const fits = async (m: Machine) => (runs.push(m), m.chunks >= 40960 && m.slots >= 5000 && machineBytes(m.chunks, m.slots) >= 130000);
    const found = await smallestMachine(fits);
    expect(found).toEqual({ chunks: 40960 + 4096, slots: 5120 + 256, bytes: machineBytes(45056, 5376), extraSteps: 1 });
    expect(runs.every((m) => m.chunks <= DEFAULTS.roomyChunks && m.slots <= DEFAULTS.roomySlots)).toBe(true);
    expect(await smallestMachine(async () => false)).toBeNull();
  });

  it("counts the high-water above idle in ESP32 bytes (slots at 16 B)", () => {
    expect(aboveIdle({ idleChunks: 1000, idleSlots: 100, peakChunks: 5000, peakSlots: 150 })).toEqual({ chunks: 4000, slots: 50, bytes: 4000 + 50 * 16 });
  });
});
