// Typed event builders for the places that change state; each runs inside the caller's transaction.
import type { UpdateStatus } from "../../device/protocol";
import type { Db } from "../db";
import type { UpdateRow } from "../model/updates";
import { recordEvent } from "./store";
import type { CampaignEventKind, DeviceEventKind } from "./types";

export function campaignEvent(db: Db, campaignId: string, at: number, kind: CampaignEventKind, data: Record<string, unknown>): void {
  recordEvent(db, { type: `campaign.${kind}`, at, campaign_id: campaignId, data });
}

/** `cause`: the update (and its campaign) behind the change, when there is one. */
export function deviceEvent(db: Db, deviceId: string, at: number, kind: DeviceEventKind, data: Record<string, unknown> = {}, cause?: UpdateRow): void {
  recordEvent(db, { type: `device.${kind}`, at, device_id: deviceId, campaign_id: cause?.campaign_id ?? null, update_id: cause?.update_id ?? null, data });
}

/** update.<status> for the update as it is now (after the change). */
export function updateEvent(db: Db, u: UpdateRow, at: number, extra: Record<string, unknown> = {}): void {
  recordEvent(db, {
    type: `update.${u.status satisfies UpdateStatus}`, at, campaign_id: u.campaign_id, device_id: u.device_id, update_id: u.update_id,
    data: {
      status: u.status, progress: u.progress, error_code: u.error_code, error_message: u.error_message, firmware_id: u.firmware_id,
      from_version: u.from_version, to_version: u.to_version, rollback: u.rollback === 1, attempt: u.attempt, ...extra,
    },
  });
}

/** Progress reports within one status are thinned to one event per 25 % step: a fleet reports progress often. */
export function progressWorthAnEvent(before: UpdateRow, after: UpdateRow): boolean {
  return before.status !== after.status || Math.floor(before.progress / 25) !== Math.floor(after.progress / 25);
}
