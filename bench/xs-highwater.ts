// xs_update_highwater_*: how far XS's own memory grows above the idle agent during an update. The stock
// xsnap-worker starts with a 32 MB chunk arena and 256 K slots, so its `allocate` meter never moves and a GC
// almost never runs (live samples after a forced GC never see the garbage in between). This builds a variant of
// the same worker, linked from the objects @agoric/xsnap already compiled, with two changes to xsnap-worker.c:
// - the machine starts small and grows in small steps (XSNAP_* environment variables below). XS grows an arena
//   only when a collection could not free enough (xsMemory.c: fxNewChunk collects before fxGrowChunks; fxNewSlot
//   grows once the heap keeps thrashing), so the arena is the high-water of what the agent held, garbage between
//   collections included, to within one growth step;
// - each crank's meter also reports both arenas: chunkArena (the->maximumChunksSize, bytes) and slotArena
//   (the->maximumHeapCount, slots).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { XsAgent } from "../host-sim/xs/xs-agent";
import type { Meter } from "../host-sim/xs/xs-worker";
import { useXsnapWorker } from "../host-sim/xs/xs-worker";
import type { World } from "../test/helpers/e2e";
import { assign, BIG_SLOTS_CSV, device, upload } from "../test/helpers/e2e";

/** Small steps (256-byte chunk blocks, 32 slots), so the arenas follow what the agent holds closely. */
export const HIGHWATER_MACHINE = {
  XSNAP_INITIAL_CHUNKS: String(16 * 1024),
  XSNAP_INCREMENTAL_CHUNKS: String(256),
  XSNAP_INITIAL_SLOTS: String(1024),
  XSNAP_INCREMENTAL_SLOTS: String(32),
};

const CREATION: [string, string][] = [
  ["32 * 1024 * 1024,\t/* initialChunkSize */", 'envSize("XSNAP_INITIAL_CHUNKS", 32 * 1024 * 1024),'],
  ["4 * 1024 * 1024,\t/* incrementalChunkSize */", 'envSize("XSNAP_INCREMENTAL_CHUNKS", 4 * 1024 * 1024),'],
  ["256 * 1024,\t\t\t/* initialHeapCount */", 'envSize("XSNAP_INITIAL_SLOTS", 256 * 1024),'],
  ["128 * 1024,\t\t\t/* incrementalHeapCount */", 'envSize("XSNAP_INCREMENTAL_SLOTS", 128 * 1024),'],
  ['"\\"allocate\\":%u,"', '"\\"allocate\\":%u,\\"chunkArena\\":%u,\\"chunksInUse\\":%u,\\"slotArena\\":%u,"'],
  ["meterIndex, the->allocatedSpace, tsbuf);", "meterIndex, the->allocatedSpace, chunkArena(the), chunksInUse(the), slotArena(the), tsbuf);"],
  [
    "int main(int argc, char* argv[])",
    "unsigned chunkArena(void* the);\nunsigned chunksInUse(void* the);\nunsigned slotArena(void* the);\n" +
      'static int envSize(const char* name, int otherwise) { const char* v = getenv(name); return v ? atoi(v) : otherwise; }\n\nint main(int argc, char* argv[])',
  ],
];
/** The arenas live in txMachine (xsAll.h), which xsnap-worker.c does not see. */
const ARENAS_C = `#include "xsAll.h"
unsigned chunkArena(void* the) { return (unsigned)((txMachine*)the)->maximumChunksSize; }
unsigned chunksInUse(void* the) { return (unsigned)((txMachine*)the)->currentChunksSize; }
unsigned slotArena(void* the) { return (unsigned)((txMachine*)the)->maximumHeapCount; }
`;

/** Path of the metered worker, built once per machine (a few seconds: one C file compiled, the rest linked). */
export function meteredXsnapWorker(): string {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve("@agoric/xsnap/package.json"));
  const version = (JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version: string }).version;
  const native = join(pkgDir, "xsnap-native", "xsnap");
  const objects = join(native, "build", "tmp", "lin", "release", "xsnap-worker");
  const xs = join(pkgDir, "moddable", "xs");
  let source = readFileSync(join(native, "sources", "xsnap-worker.c"), "utf8");
  for (const [from, to] of CREATION) {
    if (!source.includes(from)) throw new Error(`xsnap-worker.c has changed: cannot find ${JSON.stringify(from)}`);
    source = source.replace(from, to);
  }
  const dir = join(tmpdir(), `esp32-ota-xsnap-highwater-${createHash("sha256").update(source).update(ARENAS_C).update(version).digest("hex").slice(0, 12)}`);
  const bin = join(dir, "xsnap-worker");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "xsnap-worker.c"), source);
  // The release options of xsnap-native/xsnap/makefiles/lin/xsnap-worker.mk.
  const defines = ["-DINCLUDE_XSPLATFORM", '-DXSPLATFORM="xsnapPlatform.h"', `-DXSNAP_VERSION="${version}"`, "-DXSNAP_TEST_RECORD=0", "-DmxLockdown=1",
    "-DmxMetering=1", "-DmxDebug=1", "-UmxInstrument", "-DmxNoConsole=1", "-DmxBoundsCheck=1", "-DmxParse=1", "-DmxRun=1", "-DmxSloppy=1",
    "-DmxSnapshot=1", "-DmxRegExpUnicodePropertyEscapes=1", "-DmxStringNormalize=1", "-DmxMinusZero=1"];
  const includes = [join(xs, "includes"), join(xs, "platforms"), join(xs, "sources"), join(native, "sources")].map((d) => `-I${d}`);
  writeFileSync(join(dir, "arenas.c"), ARENAS_C);
  for (const name of ["xsnap-worker", "arenas"]) {
    execFileSync("gcc", ["-c", "-O3", "-fno-common", ...defines, ...includes, "-o", join(dir, `${name}.o`), join(dir, `${name}.c`)], { stdio: "inherit" });
  }
  const others = readdirSync(objects).filter((f) => f.endsWith(".o") && f !== "xsnap-worker.o").map((f) => join(objects, f));
  execFileSync("gcc", ["-rdynamic", "-o", `${bin}.tmp`, join(dir, "xsnap-worker.o"), join(dir, "arenas.o"), ...others, "-ldl", "-lm", "-lpthread"], { stdio: "inherit" });
  renameSync(`${bin}.tmp`, bin); // whole or absent, should two runs build at once
  return bin;
}

type Evaluate = (code: string) => Promise<Meter>;

/** Fills the idle machine's free arena space with live ballast, so that whatever an update needs beyond what the
 * idle agent holds grows the arenas. Loading the agent leaves slack (the parser's garbage: ~200 KB of chunks),
 * which would otherwise absorb the update unseen. Chunks first, in pieces of 1 KiB then 64 bytes, then slots (a
 * linked list: no chunk); each stage stops at its arena's first growth, so what stays free is under one step.
 * Resolves with the meter of the filled machine: the idle figure. */
export async function fillArenas(evaluate: Evaluate): Promise<Meter> {
  await evaluate(`globalThis.ballast = { chunks: [], slots: null };
    globalThis.fillChunks = (n, size) => { for (let i = 0; i < n; i++) ballast.chunks.push(new ArrayBuffer(size)); };
    globalThis.fillSlots = (n) => { for (let i = 0; i < n; i++) ballast.slots = { next: ballast.slots }; };`);
  let meter = await evaluate("gc()");
  const stages: [string, (m: Meter) => number][] = [
    ["fillChunks(16, 1024)", (m) => m.chunkArena!],
    ["fillChunks(16, 64)", (m) => m.chunkArena!],
    ["fillSlots(16)", (m) => m.slotArena!],
  ];
  for (const [fill, arena] of stages) {
    const start = arena(meter);
    for (let i = 0; i < 100_000 && arena(meter) === start; i++) meter = await evaluate(fill);
    if (arena(meter) === start) throw new Error(`${fill} never filled its arena`);
  }
  return evaluate("gc()");
}

/** Arena growth above `idle` in ESP32 terms: chunk bytes as measured on this 64-bit host (an array's items are
 * 32-byte slots here, 16 on the chip), slots counted at 16 bytes (the ESP32's txSlot). */
export function highwaterAbove(idle: Meter, end: Meter) {
  const chunks = end.chunkArena! - idle.chunkArena!;
  const slots = end.slotArena! - idle.slotArena!;
  return { chunks, slots, bytes: chunks + slots * 16 };
}

let serial = 0;

/** Updates a fresh XS device of `w` (a world of XS devices) to an image of `size` bytes, in the metered worker,
 * and measures the update's high-water above the idle agent, ballast filled. */
export async function updateHighwater(w: World, size: number) {
  const version = `8.${++serial}.0`;
  const fw = await upload(w, version, { size });
  useXsnapWorker({ binary: meteredXsnapWorker(), env: HIGHWATER_MACHINE });
  try {
    const { dev } = await device(w, `highwater-${serial}`, { partitionsCsv: BIG_SLOTS_CSV, flashSize: 16 << 20 });
    try {
      if ((await dev.powerOn()).kind !== "running") throw new Error("the device did not boot");
      await assign(w, dev.options.id, fw);
      const agent = dev.agent as XsAgent;
      const idle = await fillArenas((code) => agent.evaluate(code));
      const outcome = await agent.checkNow();
      if (outcome.result !== "restarting") throw new Error(`the update did not complete: ${JSON.stringify(outcome)}`);
      await agent.settledCompute();
      return highwaterAbove(idle, agent.meters.last!);
    } finally {
      await dev.powerOff();
    }
  } finally {
    useXsnapWorker(null);
  }
}
