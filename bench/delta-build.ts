// Run in a process of its own by bench/delta.ts: the server's patch build for two 1.5 MiB images (a minor
// change), its self-check, and the peak memory they add (max RSS after, less max RSS before).
import { buildAppImage } from "../esp-image/app-image";
import { minorChange } from "../esp-image/minor-change";
import { buildPatch, patchRebuilds } from "../server-stub/delta/diff";

const size = 1.5 * 1024 * 1024;
const base = buildAppImage({ version: "1.0.0", size });
const next = minorChange(base, "1.1.0");
// Touch the pages the build will use anyway, so the baseline is the images and the code, not lazy start-up.
buildPatch(base.subarray(0, 4096), next.subarray(0, 4096));
const before = process.resourceUsage().maxRSS;
const t0 = performance.now();
const patch = buildPatch(base, next);
const buildMs = performance.now() - t0;
const t1 = performance.now();
const ok = patchRebuilds(base, patch, next);
const checkMs = performance.now() - t1;
const after = process.resourceUsage().maxRSS;
console.log(JSON.stringify({ buildMs, checkMs, ok, patchBytes: patch.length, imageBytes: next.length, peakKb: after - before }));
