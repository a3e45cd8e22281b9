// Delta patches between stored firmware (device/protocol/DELTA.md): built once per (base, target) pair of
// SHA-256s, checked byte for byte by applying them with the device's reader, and offered only when clearly
// smaller than the image. Built when a firmware is uploaded (from the last few of its model) and, for a
// device whose running image is another stored firmware, the first time such a device asks.
import type { DeltaOffer } from "../../device/protocol";
import { firmwarePatchPath } from "../../device/protocol";
import type { Ctx } from "../context";
import { logEvent } from "../log";
import type { FirmwareRow } from "../model/firmware";
import { buildPatch, patchRebuilds } from "../delta/diff";

/** The seed's rule: a patch is offered only under 70 % of the full image. */
export const DELTA_MAX_RATIO = 0.7;
/** An upload builds patches from this many earlier firmware of its model, newest first. */
const BASES_PER_UPLOAD = 3;

export type PatchStatus = "ready" | "not_smaller" | "failed";

export interface PatchRow {
  base_sha256: string;
  target_sha256: string;
  status: PatchStatus;
  patch_sha256: string | null;
  patch_size: number | null;
  base_firmware_id: string | null;
  target_firmware_id: string | null;
  build_ms: number;
  created_at: number;
}

export function getPatch(ctx: Ctx, baseSha: string, targetSha: string): PatchRow | undefined {
  return ctx.db.prepare("SELECT * FROM patches WHERE base_sha256 = ? AND target_sha256 = ?").get(baseSha, targetSha) as PatchRow | undefined;
}

/** The patch base → target, built (and recorded, whatever the verdict) the first time it is asked for. */
export function ensurePatch(ctx: Ctx, base: FirmwareRow, target: Pick<FirmwareRow, "firmware_id" | "checksum_sha256">): PatchRow | null {
  if (base.checksum_sha256 === target.checksum_sha256) return null;
  const known = getPatch(ctx, base.checksum_sha256, target.checksum_sha256);
  if (known) return known;
  if (!ctx.blobs.has(base.checksum_sha256) || !ctx.blobs.has(target.checksum_sha256)) return null;
  const old = ctx.blobs.read(base.checksum_sha256);
  const next = ctx.blobs.read(target.checksum_sha256);
  const t0 = performance.now();
  const patch = buildPatch(old, next);
  const buildMs = Math.round(performance.now() - t0);
  // Never offered unless applying it gives the target back exactly.
  const status: PatchStatus = !patchRebuilds(old, patch, next) ? "failed" : patch.length < DELTA_MAX_RATIO * next.length ? "ready" : "not_smaller";
  const patchSha = status === "ready" ? ctx.blobs.storeBytes(patch) : null;
  ctx.db
    .prepare(
      `INSERT INTO patches(base_sha256, target_sha256, status, patch_sha256, patch_size, base_firmware_id, target_firmware_id, build_ms, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    )
    .run(base.checksum_sha256, target.checksum_sha256, status, patchSha, patch.length, base.firmware_id, target.firmware_id, buildMs, ctx.clock.now());
  logEvent(ctx.log, "delta_built", { base: base.firmware_id, target: target.firmware_id, status, patch_size: patch.length, image_size: next.length, build_ms: buildMs });
  return getPatch(ctx, base.checksum_sha256, target.checksum_sha256)!;
}

/** On upload: patches from the last few firmware of the same model. */
export function buildPatchesForUpload(ctx: Ctx, fw: FirmwareRow): void {
  if (!ctx.config.deltas) return;
  const bases = ctx.db
    .prepare("SELECT * FROM firmware WHERE device_model = ? AND firmware_id != ? ORDER BY created_at DESC, rowid DESC LIMIT ?")
    .all(fw.device_model, fw.firmware_id, BASES_PER_UPLOAD) as FirmwareRow[];
  for (const base of bases) ensurePatch(ctx, base, fw);
}

/** The delta to offer a device running the image `runningSha` (null: the full image). */
export function deltaOffer(ctx: Ctx, fw: Pick<FirmwareRow, "firmware_id" | "checksum_sha256">, runningSha: string | undefined, base = ctx.config.publicUrl): DeltaOffer | null {
  if (!runningSha || !ctx.config.deltas) return null;
  let row = getPatch(ctx, runningSha, fw.checksum_sha256);
  if (!row) {
    const base = ctx.db.prepare("SELECT * FROM firmware WHERE checksum_sha256 = ? LIMIT 1").get(runningSha) as FirmwareRow | undefined;
    if (base) row = ensurePatch(ctx, base, fw) ?? undefined;
  }
  if (row?.status !== "ready" || !row.patch_sha256 || !row.patch_size) return null;
  return {
    base_sha256: runningSha,
    patch_url: base + firmwarePatchPath(fw.firmware_id, runningSha),
    patch_size: row.patch_size,
    patch_sha256: row.patch_sha256,
  };
}

/** For the firmware record: the patches that rebuild it, and the bytes its delta updates saved. */
export function firmwareDeltas(ctx: Ctx, fw: FirmwareRow) {
  const rows = ctx.db.prepare("SELECT * FROM patches WHERE target_sha256 = ? ORDER BY created_at").all(fw.checksum_sha256) as PatchRow[];
  const saved = ctx.db.prepare("SELECT COALESCE(SUM(bytes_saved), 0) AS n FROM updates WHERE firmware_id = ? AND delivery = 'delta'").get(fw.firmware_id) as { n: number };
  return {
    deltas: rows.map((r) => ({
      from_firmware_id: r.base_firmware_id, base_sha256: r.base_sha256, status: r.status, patch_size: r.patch_size,
      ratio: r.patch_size === null ? null : Math.round((r.patch_size / fw.file_size) * 10000) / 10000, build_ms: r.build_ms,
    })),
    delta_bytes_saved: saved.n,
  };
}
