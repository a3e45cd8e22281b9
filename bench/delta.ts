// `npx tsx bench/run.ts delta`: delta update figures. The "typical minor change" is esp-image/minor-change.ts:
// the next version of an app image built for the purpose, with six functions rewritten, one grown by 512
// bytes (the code after it moves), one relocated 32-bit address in every 256 bytes of the moved code, and
// eight strings changed. XS figures run the agent on the real engine against the real server, the device's
// running image being the stored base; its digest is computed at a first check (once per image's life, or
// learned from the manifest when the image was installed by OTA) and reported on its own.
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { buildAppImage } from "../esp-image/app-image";
import { minorChange } from "../esp-image/minor-change";
import { programPartition } from "../host-sim/device-flash";
import { loadPartitionTable } from "../host-sim/esp/esp-ota";
import { findByName } from "../host-sim/esp/partition-table";
import type { XsAgent } from "../host-sim/xs/xs-agent";
import { buildPatch } from "../server-stub/delta/diff";
import type { World } from "../test/helpers/e2e";
import { assign, BIG_SLOTS_CSV, device, startWorld, upload } from "../test/helpers/e2e";
import type { Figure } from "./run";

const here = dirname(fileURLToPath(import.meta.url));
const KiB = 1024;
const MiB = 1024 * KiB;
let serial = 0;

/** One update of a `size`-byte image on XS, by delta (a minor change of the running image) or in full. */
export async function xsUpdate(w: World, size: number, delta: boolean, sampleEvery = 0) {
  const k = ++serial;
  const base = buildAppImage({ version: `5.${k}.0`, size });
  const next = delta ? minorChange(base, `5.${k}.1`) : buildAppImage({ version: `5.${k}.1`, size });
  await upload(w, `5.${k}.0`, { bytes: base });
  const fw = await upload(w, `5.${k}.1`, { bytes: next });
  const { dev } = await device(w, `bench-delta-${k}`, { partitionsCsv: BIG_SLOTS_CSV, flashSize: 16 << 20, extra: { xsSampleLiveSlotsEvery: sampleEvery } });
  programPartition(dev.flash, findByName(loadPartitionTable(dev.flash), "ota_0")!, base);
  // First boot: a check with nothing assigned stores the running image's digest.
  await dev.powerOn();
  const first = dev.agent as XsAgent;
  const beforeDigest = await first.settledCompute();
  await first.checkNow();
  const digestCompute = (await first.settledCompute()) - beforeDigest;
  await dev.powerOff();
  await dev.powerOn();
  await assign(w, dev.options.id, fw);
  const agent = dev.agent as XsAgent;
  const outcome = await agent.checkNow();
  if (outcome.result !== "restarting") throw new Error(`update did not complete: ${JSON.stringify(outcome)}\n${dev.logs.slice(-5).join("\n")}`);
  const compute = (await agent.settledCompute()) - agent.meters.idle!.compute;
  const m = agent.meters;
  const memory = (m.peakHeapCount - m.idleHeapCount) * 32;
  const downloaded = dev.http.downloaded;
  await dev.powerOff();
  if (delta && downloaded > size / 4) throw new Error(`the delta update downloaded ${downloaded} bytes of a ${size}-byte image`);
  return { compute, memory, digestCompute, downloaded };
}

export async function deltaFigures(figures: Figure[]) {
  const base = buildAppImage({ version: "1.0.0", size: 512 * KiB });
  const next = minorChange(base, "1.1.0");
  const ratio = buildPatch(base, next).length / next.length;
  figures.push({ name: "delta_patch_ratio", value: round(ratio, 4), unit: "ratio", target: "<= 0.25", met: ratio <= 0.25, note: "patch / image, 512 KiB app, minor change (bench/delta.ts)" });

  const { stdout } = await promisify(execFile)("npx", ["tsx", join(here, "delta-build.ts")]);
  const build = JSON.parse(stdout.trim().split("\n").pop()!) as { buildMs: number; checkMs: number; ok: boolean; patchBytes: number; imageBytes: number; peakKb: number };
  if (!build.ok) throw new Error("the 1.5 MiB patch did not rebuild its image");
  figures.push({ name: "delta_build_ms_1_5m", value: Math.round(build.buildMs), unit: "ms", note: `server patch build, two 1.5 MiB images; self-check (apply and compare) ${Math.round(build.checkMs)} ms more` });
  figures.push({ name: "delta_build_peak_mb_1_5m", value: round(build.peakKb / 1024, 1), unit: "MB", note: "max RSS growth of the build and its self-check, in a process of its own" });
  figures.push({ name: "delta_patch_ratio_1_5m", value: round(build.patchBytes / build.imageBytes, 4), unit: "ratio" });

  const w = await startWorld("xs");
  try {
    const memory: Record<string, number> = {};
    for (const [label, size] of [["256k", 256 * KiB], ["1m", MiB], ["4m", 4 * MiB]] as const) {
      // A delta update makes few pushes (the patch is small): sample after every one, so a report in flight is seen.
      const r = await xsUpdate(w, size, true, 1);
      memory[label] = r.memory;
      if (label === "1m") {
        figures.push({ name: "xs_delta_apply_memory", value: r.memory, unit: "bytes", target: "<= 32768", met: r.memory <= 32768, note: "live slots x 32 B above idle during a 1 MiB delta apply; chunks not observable" });
      } else {
        figures.push({ name: `xs_delta_apply_memory_${label}`, value: r.memory, unit: "bytes" });
      }
    }
    const growth = memory["4m"]! / Math.max(1, memory["256k"]!);
    figures.push({ name: "xs_delta_apply_memory_growth_4m_vs_256k", value: round(growth, 3), unit: "ratio", target: "<= 1.05", met: growth <= 1.05 });

    const deltaRun = await xsUpdate(w, MiB, true);
    const fullRun = await xsUpdate(w, MiB, false);
    const computeRatio = deltaRun.compute / fullRun.compute;
    figures.push({ name: "xs_delta_compute_per_mib", value: deltaRun.compute, unit: "compute/MiB" });
    figures.push({ name: "xs_full_compute_per_mib", value: fullRun.compute, unit: "compute/MiB", note: "the same 1 MiB update in full, same set-up" });
    figures.push({ name: "xs_delta_compute_ratio", value: round(computeRatio, 3), unit: "ratio", target: "<= 2", met: computeRatio <= 2, note: "delta update vs full-image update, per MiB of image" });
    figures.push({ name: "xs_running_digest_compute_per_mib", value: deltaRun.digestCompute, unit: "compute/MiB", note: "hashing a factory image once at its first check (not part of either update)" });
    figures.push({ name: "delta_bytes_downloaded_1m", value: deltaRun.downloaded, unit: "bytes", note: `vs ${fullRun.downloaded} for the full image` });
  } finally {
    await w.close();
  }
}

function round(v: number, digits: number) {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
