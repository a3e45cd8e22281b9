// Signed rollbacks: a device to a chosen version, or a campaign device to its previous firmware.
import { badRequest, conflict, notFound } from "../api-error";
import type { Ctx } from "../context";
import { lockDevice } from "../db";
import { getDevice } from "../model/devices";
import { findFirmwareByVersion, getFirmware } from "../model/firmware";
import { activeUpdateFor, type UpdateRow } from "../model/updates";
import { assignUpdate, cancelUpdateRow } from "./updates";

/** POST /devices/{id}/rollback: a signed rollback to target_version (default: the previous version). */
export function rollbackDevice(ctx: Ctx, deviceId: string, targetVersion: string | undefined, reason: string | null): UpdateRow {
  return ctx.db.transaction(() => {
    const d = getDevice(ctx.db, deviceId);
    if (!d) throw notFound("device", deviceId);
    const version = targetVersion ?? d.previous_version;
    if (!version) throw badRequest(`no target_version given and no previous version known for ${deviceId}`, "NO_ROLLBACK_TARGET");
    const fw = findFirmwareByVersion(ctx.db, version, d.device_model);
    if (!fw) throw notFound("firmware", `version ${version}`);
    if (d.device_model && fw.device_model !== d.device_model) throw conflict("INCOMPATIBLE_FIRMWARE", `firmware ${version} exists only for ${fw.device_model}`);
    lockDevice(ctx.db, deviceId);
    const active = activeUpdateFor(ctx.db, deviceId);
    if (active) cancelUpdateRow(ctx, active, "superseded by a rollback");
    const reverts = ctx.db
      .prepare("SELECT update_id FROM updates WHERE device_id = ? AND status = 'completed' AND rollback = 0 AND to_version = ? ORDER BY completed_at DESC LIMIT 1")
      .get(deviceId, d.current_version ?? "") as { update_id: string } | undefined;
    return assignUpdate(ctx, {
      deviceId, firmware: fw, priority: "high", mandatory: true, rollback: true, revertsUpdateId: reverts?.update_id ?? null, reason,
    });
  })();
}

/** Campaign auto/manual rollback of one device that installed the campaign's firmware. */
export function rollbackCampaignDevice(ctx: Ctx, campaignId: string, original: UpdateRow, reason: string): UpdateRow | string {
  const fw = (original.from_firmware_id && getFirmware(ctx.db, original.from_firmware_id)) ||
    (original.from_version ? findFirmwareByVersion(ctx.db, original.from_version, getDevice(ctx.db, original.device_id)?.device_model ?? null) : undefined);
  if (!fw) return `no stored firmware for previous version ${original.from_version ?? "(unknown)"}`;
  lockDevice(ctx.db, original.device_id);
  const active = activeUpdateFor(ctx.db, original.device_id);
  if (active) cancelUpdateRow(ctx, active, "superseded by a campaign rollback");
  const u = assignUpdate(ctx, {
    deviceId: original.device_id, firmware: fw, priority: "critical", campaignId, mandatory: true, rollback: true,
    revertsUpdateId: original.update_id, reason,
  });
  ctx.db.prepare("UPDATE campaign_devices SET rollback_update_id = ? WHERE campaign_id = ? AND device_id = ?").run(u.update_id, campaignId, original.device_id);
  return u;
}
