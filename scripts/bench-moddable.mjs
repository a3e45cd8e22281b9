// npm run bench:moddable -- the agent core on the ESP32 adapters, built with mcconfig for Moddable's headless
// Linux runtime (x-cli-lin, bench/moddable/) and run in a fixed-size XS machine against a real ota-server on
// loopback: XS chunk and slot high-water above idle during a 1 MiB and a 4 MiB update, and the smallest fixed-size
// machine (found by bisection) in which the idle agent and each update complete. Writes bench/moddable.json.
// Needs $MODDABLE (SDK 8.2.3, Linux host tools built) and TypeScript 6 as `tsc`; without them: one line, exit 0.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as lib from "./bench-moddable-lib.mjs";
import { outDir as prebuildDir, prebuild } from "./esp32-prebuild.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const MODEL = "ESP32-DEVKIT";
const SLOT_SIZE = 5 << 20; // room for the 4 MiB image (the ESP32 table's 1.875 MiB slots would not hold it)
const AGENT_SIZE = 0x10000; // partitions.csv's `agent` partition
const BOOT_TIMEOUT_MS = 120_000;
const VERSIONS = { "1m": "1.1.0", "4m": "1.2.0" };

let options;
try {
  options = lib.parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`bench:moddable: ${e.message}`);
  process.exit(1);
}

// npm puts the project's TypeScript 5 first on PATH: mcconfig must find the SDK's tools and TypeScript 6 instead.
const projectBin = join(root, "node_modules", ".bin");
const hostTools = process.env.MODDABLE ? join(process.env.MODDABLE, "build", "bin", "lin", "release") : "";
const path = (process.env.PATH ?? "").split(delimiter).filter((p) => p && resolve(p) !== projectBin);
const toolEnv = { ...process.env, PATH: [hostTools, ...path].filter(Boolean).join(delimiter) };
const tscVersion = process.env.MODDABLE ? /Version (\d+)\./.exec(spawnSync("tsc", ["-v"], { env: toolEnv, encoding: "utf8" }).stdout ?? "") : null;
const missing = lib.missingPrerequisite(process.env, tscVersion ? Number(tscVersion[1]) : null);
if (missing) {
  console.log(missing);
  process.exit(0);
}

const work = mkdtempSync(join(tmpdir(), "bench-moddable-"));
let server;
try {
  if (!existsSync(join(prebuildDir, "tweetnacl.js")) || !existsSync(join(prebuildDir, "tweetnacl.d.ts"))) await prebuild();
  const binary = build();
  server = await startServer(work);
  const figures = await measure(binary, server, work);
  writeFileSync(join(root, "bench", "moddable.json"), JSON.stringify(figures, null, 2) + "\n");
  print(figures);
} catch (e) {
  console.error(`bench:moddable FAILED: ${e.message}`);
  process.exitCode = 1;
} finally {
  server?.child.kill("SIGTERM");
  if (options.keep) console.log(`bench:moddable: kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

/** mcconfig -i (XS instrumentation) for x-cli-lin; everything it writes goes under build/moddable-bench. */
function build() {
  const out = join(root, "build", "moddable-bench");
  mkdirSync(out, { recursive: true });
  console.log("bench:moddable: building bench/moddable for x-cli-lin (the first build takes minutes)");
  const result = spawnSync("mcconfig", ["-i", "-m", "-p", "x-cli-lin", "-o", out, "bench/moddable/manifest.json"], { cwd: root, env: toolEnv, encoding: "utf8", maxBuffer: 64 << 20 });
  if (result.status !== 0) {
    const log = `${result.stdout ?? ""}${result.stderr ?? ""}`.split("\n").filter((l) => /error|Error|undefined reference/.test(l));
    throw new Error(`mcconfig failed (exit ${result.status ?? result.error?.message}):\n${log.slice(-20).join("\n")}`);
  }
  return join(out, "bin", "lin", "instrument", "moddable");
}

function node(args) {
  const result = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`node ${args.join(" ")}: ${result.stderr.trim()}`);
  return result.stdout;
}

function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
    probe.on("error", fail);
  });
}

async function startServer(dir) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = join(dir, "ota-data");
  const child = spawn(process.execPath, ["bin/ota-server.js", "--host", "127.0.0.1", "--port", String(port), "--public-url", url, "--data-dir", dataDir, "--log-dir", join(dir, "logs"), "--no-mqtt", "--quiet"], { cwd: root, stdio: "ignore" });
  for (let i = 0; ; i++) {
    if (await fetch(`${url}/health`).then((r) => r.ok, () => false)) break;
    if (i > 100 || child.exitCode !== null) throw new Error("ota-server did not start");
    await new Promise((r) => setTimeout(r, 200));
  }
  const operator = JSON.parse(node(["bin/ota-server.js", "api-key", "create", "--role", "operator", "--name", "bench", "--data-dir", dataDir])).api_key;
  const key = JSON.parse(node(["bin/ota-server.js", "keys", "--data-dir", dataDir])).keys.find((k) => k.signing).public_key;
  const api = async (method, route, body) => {
    const response = await fetch(`${url}${route}`, { method, headers: { "X-API-Key": operator, ...(body instanceof FormData ? {} : { "Content-Type": "application/json" }) }, body: body instanceof FormData ? body : JSON.stringify(body) });
    const json = await response.json();
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  };
  return { child, url, key, api };
}

async function upload(server, dir, version, size) {
  const file = join(dir, `v${version}.bin`);
  node(["bin/ota-flash.js", "image", "build", file, "--version", version, "--size", String(size)]);
  const form = new FormData();
  form.append("metadata", JSON.stringify({ name: "bench", version, device_model: MODEL }));
  form.append("file", new Blob([readFileSync(file)]), `v${version}.bin`);
  return (await server.api("POST", "/api/v1/firmware", form)).firmware_id;
}

/** One boot of the bench binary; resolves with the figures line host-lin.c prints. */
function boot(binary, env) {
  return new Promise((done) => {
    const started = Date.now();
    const wrap = process.env.BENCH_WRAP?.split(" ") ?? []; // e.g. "strace -f -tt" to look inside one run
    const child = spawn(wrap[0] ?? binary, [...wrap.slice(1), ...(wrap.length ? [binary] : [])], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (d) => (output = (output + d).slice(-8192));
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => child.kill("SIGKILL"), BOOT_TIMEOUT_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      const line = output.split("\n").reverse().find((l) => l.startsWith("BENCH "));
      const figures = line ? JSON.parse(line.slice(6)) : { exit: code, outcome: "no figures (killed or crashed)" };
      if (process.env.BENCH_LOG) process.stdout.write(`${output}(${Date.now() - started} ms)\n`);
      done({ ...figures, ms: Date.now() - started, output: figures.exit === 0 || figures.exit === 10 ? "" : output.slice(-1500) });
    });
  });
}

async function measure(binary, server, dir) {
  node(["bin/ota-flash.js", "image", "build", join(dir, "v1.0.0.bin"), "--version", "1.0.0"]);
  const factory = readFileSync(join(dir, "v1.0.0.bin"));
  const firmware = {};
  for (const size of options.sizes) firmware[size] = await upload(server, dir, VERSIONS[size], lib.imageBytes(size));
  let count = 0;
  // A fresh device (its own id and key, v1.0.0 in ota_0) per run; an update run boots until it confirms.
  const run = async (mode, size, machine) => {
    const id = `bench-${process.pid}-${++count}`;
    const { api_key } = await server.api("POST", "/api/v1/devices", { device_id: id, device_model: MODEL, hardware_version: "1.0" });
    if (mode === "update") await server.api("POST", `/api/v1/devices/${id}/update`, { firmware_id: firmware[size] });
    const flash = join(dir, "flash.bin");
    writeFileSync(flash, lib.benchFlash(factory, SLOT_SIZE, AGENT_SIZE));
    const env = { BENCH_MODE: mode, BENCH_FLASH: flash, BENCH_DEVICE_ID: id, BENCH_SERVER_URL: server.url, BENCH_API_KEY: api_key, BENCH_TRUSTED_KEY: server.key, BENCH_CHUNKS: String(machine.chunks), BENCH_SLOTS: String(machine.slots) };
    const boots = [];
    for (let n = 0; n < 3; n++) {
      boots.push(await boot(binary, env));
      if (boots.at(-1).exit !== 10) break;
    }
    const last = boots.at(-1);
    const ok = mode === "idle" ? last.exit === 0 && last.outcome === "idle" : boots[0].exit === 10 && last.exit === 0 && last.outcome === "confirmed";
    const device = ok && mode === "update" ? await server.api("GET", `/api/v1/devices/${id}`) : null;
    return { ok, boots, version: device?.current_version ?? device?.firmware_version ?? null };
  };
  // The machine of the first runs: large, so they show what the agent allocates before XS must collect.
  const roomy = { chunks: 1 << 20, slots: 65536 };
  const figures = { sdk: readFileSync(join(process.env.MODDABLE, "tools", "VERSION"), "utf8").trim(), platform: "x-cli-lin (64-bit host)", slotBytesCounted: lib.ESP32_SLOT_BYTES, roomyMachine: roomy, updates: {} };
  figures.notes = [
    "XS collects only when a fixed machine is full, so the high-water in the roomy machine (…Roomy) is the garbage made before the first collection, up to the machine's size; the high-water that bounds a device is the one in the smallest machine",
    "chunk bytes are a 64-bit host's (8-byte pointers in chunked tables): the chip's are smaller; slots are counted at the chip's 16 bytes",
    "Moddable's Linux TCP socket polls every 20 ms (1.5 KB a poll), so a 4 MiB update takes about a minute here",
  ];

  const idle = await run("idle", null, roomy);
  if (!idle.ok) throw new Error(`the idle agent failed in a roomy machine: ${JSON.stringify(idle.boots)}`);
  const i = idle.boots[0];
  figures.idle = { liveChunks: i.idleChunks, liveSlots: i.idleSlots, checkAboveIdleRoomy: lib.aboveIdle(i) };
  for (const size of options.sizes) {
    const started = Date.now();
    const update = await run("update", size, roomy);
    if (!update.ok) throw new Error(`the ${size} update failed in a roomy machine: ${JSON.stringify(update.boots)}`);
    const [download, confirm] = update.boots;
    figures.updates[size] = { imageBytes: lib.imageBytes(size), serverVersion: update.version, seconds: (Date.now() - started) / 1000, aboveIdleRoomy: lib.aboveIdle(download), confirmBootPeakChunks: confirm.peakChunks, confirmBootPeakSlots: confirm.peakSlots };
    console.log(`bench:moddable: ${size} update completed and confirmed (server: ${update.version}) in ${figures.updates[size].seconds} s`);
  }
  if (options.bisect) {
    const steps = { chunkStep: options.chunkStep, slotStep: options.slotStep };
    const passing = new Map(); // "chunks/slots" -> the run, for the high-water at the smallest machine
    const passes = (mode, size) => async (machine) => {
      const result = await run(mode, size, machine);
      if (result.ok) passing.set(`${mode}${size}/${machine.chunks}/${machine.slots}`, result);
      const last = result.boots.at(-1);
      console.log(`bench:moddable:   ${mode} ${size ?? ""} chunks ${machine.chunks} slots ${machine.slots}: ${result.ok ? "completes" : `fails (${last.abort ?? last.outcome})`}`);
      return result.ok;
    };
    figures.idle.smallestMachine = await lib.smallestMachine(passes("idle", null), steps);
    for (const size of options.sizes) {
      const smallest = await lib.smallestMachine(passes("update", size), steps);
      const at = smallest && passing.get(`update${size}/${smallest.chunks}/${smallest.slots}`);
      figures.updates[size].smallestMachine = smallest && { ...smallest, highWaterAboveIdle: lib.aboveIdle(at.boots[0]) };
      if (smallest && figures.idle.smallestMachine) figures.updates[size].smallestAboveIdleMachine = smallest.bytes - figures.idle.smallestMachine.bytes;
    }
    const over = options.sizes.map((s) => figures.updates[s].smallestAboveIdleMachine);
    figures.target = { rule: "smallest update machine - smallest idle machine <= 32768 bytes at every size, flat from 1 MiB to 4 MiB", met: over.every((b) => b !== undefined && b <= 32768) };
    if (over.length > 1) figures.target.spread = Math.max(...over) - Math.min(...over);
  }
  return figures;
}

function print(figures) {
  const m = (x) => (x ? `${x.chunks} B chunks + ${x.slots} slots = ${lib.kib(x.bytes)}` : "not found");
  console.log(`bench:moddable: Moddable ${figures.sdk}, ${figures.platform}, slots counted at ${figures.slotBytesCounted} B`);
  console.log(`  idle agent: live ${figures.idle.liveChunks} B chunks + ${figures.idle.liveSlots} slots after a GC; smallest machine (boot and one check) ${m(figures.idle.smallestMachine)}`);
  for (const [size, u] of Object.entries(figures.updates))
    console.log(
      `  ${size} update: smallest machine ${m(u.smallestMachine)}` +
        (u.smallestMachine ? `, high-water above idle in it ${m(u.smallestMachine.highWaterAboveIdle)}` : "") +
        (u.smallestAboveIdleMachine === undefined ? "" : `; ${lib.kib(u.smallestAboveIdleMachine)} above the idle agent's machine`),
    );
  if (figures.target) console.log(`  target (<= 32 KiB above idle, flat): ${figures.target.met ? "met" : "missed"}${figures.target.spread === undefined ? "" : `, spread ${lib.kib(figures.target.spread)}`}`);
}
