// npm run bench: figures measured where they matter — inside XS with the engine's own meters, and on Node
// against curl — printed as a table and written to bench/results.json. Ratios are taken within one run.
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createDeviceFlash, programPartition } from "../host-sim/device-flash";
import type { AgentRuntime, SimDeviceOptions } from "../host-sim/device/sim-device";
import { SimDevice } from "../host-sim/device/sim-device";
import { buildAppImage } from "../esp-image/app-image";
import { loadPartitionTable } from "../host-sim/esp/esp-ota";
import { findByName, parsePartitionCsv } from "../host-sim/esp/partition-table";
import type { XsAgent } from "../host-sim/xs/xs-agent";
import { agentBundle } from "../host-sim/xs/xs-agent";
import { updateHighwater } from "./xs-highwater";
import type { World } from "../test/helpers/e2e";
import { assign, BIG_SLOTS_CSV, device, startWorld, upload } from "../test/helpers/e2e";
import { api } from "../test/server/harness";
import { deltaFigures } from "./delta";
import { journalWearFigures } from "./journal-wear";
import { releaseKeyFigures } from "./release-keys";
import { availableUpdatesPath, deviceUpdatePath, firmwareDownloadPath, ROUTES } from "../device/protocol/paths";

export interface Figure {
  name: string;
  value: number;
  unit: string;
  target?: string;
  met?: boolean;
  note?: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const RESULTS = join(here, "results.json");
const MiB = 1024 * 1024;


let serial = 0;
async function updateOnce(w: World, runtime: AgentRuntime, size: number, extra: Partial<SimDeviceOptions> = {}) {
  const version = `9.${++serial}.0`;
  const fw = await upload(w, version, { size });
  const { dev, apiKey } = await device(w, `bench-${runtime}-${serial}`, { partitionsCsv: BIG_SLOTS_CSV, flashSize: 16 << 20, extra });
  const first = await dev.powerOn();
  if (first.kind !== "running") throw new Error(`device did not boot: ${first.kind}`);
  await assign(w, dev.options.id, fw);
  const env = (await api(w.h, "GET", availableUpdatesPath(dev.options.id), { apiKey })).body;
  const t0 = performance.now();
  const outcome = await dev.agent!.checkNow();
  const ms = performance.now() - t0;
  if (outcome.result !== "restarting") throw new Error(`update did not complete: ${JSON.stringify(outcome)}\n${dev.logs.slice(-5).join("\n")}`);
  return { dev, ms, env, apiKey, manifestUrl: env.manifest.download_url as string };
}

/** Peak live XS memory of an update, per image size, in a plain world (`xs_update_memory_*`, as before) and over TLS
 * with a pinned CA (`xs_update_memory_tls_*`). On the simulator the TLS engine is the host's (Node's, behind the port
 * bridge, as Moddable's is native code behind its socket on the chip): the TLS figure shows the agent's own memory is
 * the same over TLS, not what the TLS session costs on the ESP32 (mbedTLS/Moddable buffers, tens of KiB during the
 * handshake; Moddable's SecureSocket notes say memory use drops once it completes). */
async function xsMemoryTls(figures: Figure[]) {
  const w = await startWorld("xs");
  try {
    for (const [label, size] of [["256k", 256 * 1024], ["4m", 4 * MiB]] as const) {
      const every = Math.max(1, Math.round(size / 4096 / 40));
      const { dev } = await updateOnce(w, "xs", size, { xsSampleLiveSlotsEvery: every });
      if (!dev.options.serverUrl.startsWith("https:") || !dev.options.tlsCas) throw new Error("the TLS figure must come from a TLS world");
      const agent = dev.agent as XsAgent;
      await agent.settledCompute();
      const bytes = (agent.meters.peakHeapCount - agent.meters.idleHeapCount) * 32;
      figures.push({ name: `xs_update_memory_tls_${label}`, value: bytes, unit: "bytes", target: "<= 32768", met: bytes <= 32768, note: "as xs_update_memory_*, over HTTPS with a pinned CA; the TLS session itself is the host's" });
      await dev.powerOff();
    }
  } finally {
    await w.close();
  }
}

/** High-water of an update above the idle agent, in XS's own arenas (bench/xs-highwater.ts): what sampling live
 * slots after a GC (xs_update_memory_*) cannot see, i.e. chunks and the garbage between collections. */
async function xsHighwater(figures: Figure[]) {
  const w = await startWorld("xs", { tls: false });
  try {
    const target = 32 * 1024;
    for (const [label, size] of [["1m", MiB], ["4m", 4 * MiB]] as const) {
      const h = await updateHighwater(w, size);
      const note = `chunks ${h.chunks} B (64-bit host sizes) + ${h.slots} slots x 16 B`;
      figures.push({ name: `xs_update_highwater_${label}`, value: h.bytes, unit: "bytes", target: `<= ${target}`, met: h.bytes <= target, note });
    }
  } finally {
    await w.close();
  }
}

async function xsFigures(figures: Figure[]) {
  const w = await startWorld("xs", { tls: false });
  try {
    // xsnap's meters expose the arena size (which never grows here: the machine starts with 32 MB) and the
    // slots in use. We sample live slots after a GC, ~40 times per update, and count 32 bytes per slot (a
    // 64-bit txSlot). Chunk memory (ArrayBuffer and string bodies) is not observable through the meters.
    const memory: Record<string, number> = {};
    for (const [label, size] of [["256k", 256 * 1024], ["1m", MiB], ["4m", 4 * MiB]] as const) {
      const every = Math.max(1, Math.round(size / 4096 / 40));
      const { dev } = await updateOnce(w, "xs", size, { xsSampleLiveSlotsEvery: every });
      const agent = dev.agent as XsAgent;
      await agent.settledCompute();
      const m = agent.meters;
      memory[label] = (m.peakHeapCount - m.idleHeapCount) * 32;
      figures.push({ name: `xs_update_memory_${label}`, value: memory[label]!, unit: "bytes", target: "<= 32768", met: memory[label]! <= 32768, note: "live slots x 32 B; chunks not observable" });
      if (label === "4m") figures.push({ name: "xs_arena_growth_4m", value: m.peakAllocate - m.idle!.allocate, unit: "bytes", note: "growth of XS's chunk+slot arena above the idle machine" });
      await dev.powerOff();
    }
    const growth = memory["4m"]! / Math.max(1, memory["256k"]!);
    figures.push({ name: "xs_update_memory_growth_4m_vs_256k", value: round(growth, 3), unit: "ratio", target: "<= 1.05", met: growth <= 1.05 });

    // Compute per MiB: the agent's whole update against a loop that only moves the same chunks to flash.
    const size = 4 * MiB;
    const { dev, env, apiKey, manifestUrl } = await updateOnce(w, "xs", size);
    const agent = dev.agent as XsAgent;
    const agentCompute = (await agent.settledCompute()) - agent.meters.idle!.compute;
    await dev.powerOff();
    await dev.powerOn();
    const xs = dev.agent as XsAgent;
    const running = xs as unknown as { bench: XsAgent["bench"] };
    const slot = { label: "ota_0", subtype: 0x10, size: 0x500000 };
    // The same URL and bytes; an operator credential, as the device is no longer offered this download.
    const copy = await running.bench("copy", [manifestUrl, { authorization: `Bearer ${w.h.admin}` }, slot, size, 4096]);
    const perMib = agentCompute / (size / MiB);
    const ratio = agentCompute / copy.compute;
    figures.push({ name: "xs_compute_per_mib", value: Math.round(perMib), unit: "compute/MiB" });
    figures.push({ name: "xs_copy_loop_compute_per_mib", value: Math.round(copy.compute / (size / MiB)), unit: "compute/MiB" });
    figures.push({
      name: "xs_compute_ratio",
      value: round(ratio, 3),
      unit: "ratio",
      target: "<= 1.5",
      met: ratio <= 1.5,
      note: "SHA-256, flash and ed25519 are host calls, as they are native calls on the ESP32 (crypt's Digest, espota, our ed25519)",
    });

    const keys = w.keys;
    const verify = await running.bench("verify", [JSON.stringify(env), keys]);
    const again = await running.bench("verify", [JSON.stringify(env), keys]);
    const verifyCompute = Math.min(verify.compute, again.compute);
    // What the same update would cost with the manifest check in JavaScript (tweetnacl in XS) instead.
    const withJs = (agentCompute + verifyCompute) / copy.compute;
    figures.push({ name: "xs_compute_ratio_js_ed25519", value: round(withJs, 3), unit: "ratio", note: "xs_compute_ratio if the one ed25519 verify ran in XS (tweetnacl)" });
    figures.push({ name: "xs_ed25519_verify_compute", value: verifyCompute, unit: "compute" });
    // One manifest check on the ESP32 build's path (every verifier native, reached through the port) next to
    // tweetnacl in XS, in the same run; and with P-256 alone (a device built to accept only it).
    const best = async (algs?: string[]) => {
      const once = async () => (await running.bench("verify-native", [JSON.stringify(env), keys, ...(algs ? [algs] : [])])).compute;
      const first = await once();
      return Math.min(first, await once());
    };
    const nativeCompute = await best();
    figures.push({ name: "xs_manifest_verify_compute", value: nativeCompute, unit: "compute", target: "<= 1000000", met: nativeCompute <= 1_000_000, note: "the ESP32 path: native verifiers through the port" });
    figures.push({ name: "xs_manifest_verify_compute_p256", value: await best(["ecdsa-p256-sha256"]), unit: "compute", note: "the same, accepting ECDSA P-256 only" });
    figures.push({ name: "xs_manifest_verify_compute_tweetnacl", value: verifyCompute, unit: "compute", note: "ed25519 in XS (tweetnacl)" });
    figures.push({ name: "xs_ed25519_verify_ms", value: round(Math.min(verify.ms, again.ms), 1), unit: "ms" });
    await dev.powerOff();
    figures.push({ name: "xs_bundle_bytes", value: Buffer.byteLength(await agentBundle()), unit: "bytes" });
  } finally {
    await w.close();
  }
}

/** The server stub in its own process, as in production: the device under test gets this process alone. */
async function serverProcess(): Promise<{ url: string; token: string; stop(): void }> {
  const dir = mkdtempSync(join(tmpdir(), "ota-bench-"));
  const proc = spawn(process.execPath, [join(here, "..", "bin", "ota-server.js"), "--port", "0", "--dev-tokens", "--auth-port", "0", "--no-mqtt", "--host", "127.0.0.1", "--data-dir", dir], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /ota_server_started url=(\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.once("exit", (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
  const token = ((await (await fetch(url + ROUTES.devToken, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user_id: "bench", email: "bench@example.com", role: "operator", expires_in: 3600 }) })).json()) as { access_token: string }).access_token;
  return { url, token, stop: () => (proc.kill("SIGTERM"), rmSync(dir, { recursive: true, force: true })) };
}

async function nodeVsCurl(figures: Figure[]) {
  const server = await serverProcess();
  const auth = { authorization: `Bearer ${server.token}` };
  const post = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const r = await fetch(server.url + path, { method: "POST", headers: { ...auth, ...(body instanceof FormData ? {} : { "content-type": "application/json" }) }, body: body instanceof FormData ? body : JSON.stringify(body) });
    if (r.status >= 300) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as Record<string, unknown>;
  };
  try {
    const size = 4 * MiB;
    const keys = (((await (await fetch(server.url + ROUTES.keys, { headers: auth })).json()) as { keys: { key_id: string; public_key: string }[] }).keys).map((k) => ({ keyId: k.key_id, publicKey: k.public_key }));
    const form = new FormData();
    form.append("metadata", JSON.stringify({ name: "bench", version: "8.0.0", device_model: "ESP32-DEVKIT" }));
    form.append("file", new Blob([buildAppImage({ version: "8.0.0", size })]), "fw.bin");
    const fw = (await post(ROUTES.firmwareList, form)).firmware_id as string;
    const runs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const id = `bench-node-${i}`;
      const apiKey = (await post(ROUTES.devices, { device_id: id, device_model: "ESP32-DEVKIT", hardware_version: "1.0", current_version: "1.0.0" })).api_key as string;
      const flash = createDeviceFlash({ partitions: parsePartitionCsv(BIG_SLOTS_CSV, { flashSize: 16 << 20 }), size: 16 << 20 });
      programPartition(flash, findByName(loadPartitionTable(flash), "ota_0")!, buildAppImage({ version: "1.0.0" }));
      const dev = new SimDevice({ id, flash, serverUrl: server.url, apiKey, trustedKeys: keys, agent: { progressStepPercent: 5 }, nativeEd25519: true });
      await dev.powerOn();
      await post(deviceUpdatePath(id), { firmware_id: fw });
      const t0 = performance.now();
      const outcome = await dev.agent!.checkNow();
      runs.push(performance.now() - t0);
      if (outcome.result !== "restarting") throw new Error(`update failed: ${JSON.stringify(outcome)}`);
      await dev.powerOff();
    }
    const curls: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await promisify(execFile)("curl", ["-sf", "-o", "/dev/null", "-H", `authorization: Bearer ${server.token}`, server.url + firmwareDownloadPath(fw)]);
      curls.push(performance.now() - t0);
    }
    const node = size / MiB / (Math.min(...runs) / 1000);
    const curl = size / MiB / (Math.min(...curls) / 1000);
    figures.push({ name: "node_update_mib_per_s", value: round(node, 1), unit: "MiB/s", note: "whole update: download, SHA-256, flash writes, two image verifications, switch" });
    figures.push({ name: "curl_download_mib_per_s", value: round(curl, 1), unit: "MiB/s", note: "curl -o /dev/null of the same URL" });
    figures.push({
      name: "node_update_vs_curl",
      value: round(node / curl, 3),
      unit: "ratio",
      target: ">= 0.5",
      met: node / curl >= 0.5,
      note: "the update also writes simulated flash, hashes, verifies the image (esp_ota_end) and reports to the server; best of 5 each",
    });
  } finally {
    server.stop();
  }
}

function round(v: number, digits: number) {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Merges figures into bench/results.json (other suites add theirs to the same file). */
export function record(figures: Figure[]) {
  mkdirSync(here, { recursive: true });
  const previous: Figure[] = existsSync(RESULTS) ? JSON.parse(readFileSync(RESULTS, "utf8")) : [];
  const names = new Set(figures.map((f) => f.name));
  writeFileSync(RESULTS, JSON.stringify([...previous.filter((f) => !names.has(f.name)), ...figures], null, 2) + "\n");
}

export function printTable(figures: Figure[]) {
  const rows = figures.map((f) => [f.name, String(f.value), f.unit, f.target ?? "", f.met === undefined ? "" : f.met ? "met" : "MISSED"]);
  const widths = [0, 1, 2, 3, 4].map((i) => Math.max(...[["figure", "value", "unit", "target", ""], ...rows].map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ");
  console.log(line(["figure", "value", "unit", "target", ""]));
  for (const r of rows) console.log(line(r));
  for (const f of figures) if (f.met === false) console.log(`MISSED: ${f.name} = ${f.value} ${f.unit} (target ${f.target})${f.note ? ` — ${f.note}` : ""}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // `npm run bench -- xs`, `-- node`, `-- journal` or `-- delta` runs one group (`-- xs-highwater` only that part
  // of xs); no argument runs all.
  const only = process.argv[2];
  const figures: Figure[] = [];
  if (!only || only === "xs") {
    await xsFigures(figures);
    await xsHighwater(figures);
    await xsMemoryTls(figures);
    await releaseKeyFigures(figures);
  }
  if (only === "xs-highwater") await xsHighwater(figures);
  if (!only || only === "node") await nodeVsCurl(figures);
  if (!only || only === "journal") await journalWearFigures(figures);
  if (!only || only === "delta") await deltaFigures(figures);
  printTable(figures);
  record(figures);
  console.log(`\nwritten to ${RESULTS}`);
  process.exit(0);
}
