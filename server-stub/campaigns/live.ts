// The engine's live upkeep of a running campaign: devices that newly match its target_filter join, and a
// maintenance window that closes takes back the updates devices have not begun.
import type { Ctx } from "../context";
import { logEvent } from "../log";
import { getDevice } from "../model/devices";
import { getFirmware } from "../model/firmware";
import type { UpdateRow } from "../model/updates";
import { cancelUpdateRow } from "../services/updates";
import type { CampaignConfig } from "./config";
import { logCampaignEvent, sampleSeed, type CampaignRow } from "./model";
import { admittedToRollout, filterMatches } from "./targeting";

/** A window closed on updates the devices have not begun: they go back to pending (and cannot time out) until the next one. */
export function withdrawUnstarted(ctx: Ctx, c: CampaignRow, now: number): void {
  const { db } = ctx;
  const rows = db.prepare("SELECT u.* FROM campaign_devices cd JOIN updates u ON u.update_id = cd.update_id WHERE cd.campaign_id = ? AND cd.state = 'in_progress' AND u.status IN ('scheduled','deferred')").all(c.campaign_id) as UpdateRow[];
  for (const u of rows) {
    cancelUpdateRow(ctx, u, "maintenance window closed before the update began");
    db.prepare("UPDATE campaign_devices SET state = 'pending', update_id = NULL, finished_at = NULL WHERE campaign_id = ? AND device_id = ?").run(c.campaign_id, u.device_id);
  }
  if (rows.length) logCampaignEvent(db, c.campaign_id, now, "window_closed", { withdrawn: rows.length });
}

/** Devices that match target_filter and are not in the campaign yet join its last stage (a live target list). */
export function joinLateDevices(ctx: Ctx, c: CampaignRow, cfg: CampaignConfig, now: number): void {
  const { db } = ctx;
  const last = (db.prepare("SELECT MAX(stage_index) AS i, (SELECT MAX(position) FROM campaign_devices WHERE campaign_id = ?) AS p FROM campaign_stages WHERE campaign_id = ?")
    .get(c.campaign_id, c.campaign_id) as { i: number | null; p: number | null });
  if (last.i === null || c.current_stage > last.i) return;
  const version = getFirmware(db, c.firmware_id)?.version;
  const seed = sampleSeed(cfg, c.campaign_id);
  let position = (last.p ?? -1) + 1;
  for (const id of filterMatches(db, cfg.target_filter!, c.campaign_id)) {
    // Already on the release (nothing to do), or outside the rollout_percentage draw: not a member.
    if (getDevice(db, id)?.current_version === version || !admittedToRollout(seed, id, cfg.rollout_percentage)) continue;
    db.prepare("INSERT INTO campaign_devices(campaign_id, device_id, stage_index, position, state) VALUES (?, ?, ?, ?, 'pending')").run(c.campaign_id, id, last.i, position++);
    logCampaignEvent(db, c.campaign_id, now, "device_joined", { device_id: id, stage: last.i });
    logEvent(ctx.log, "campaign_device_joined", { campaign_id: c.campaign_id, device_id: id, stage: last.i });
  }
}
