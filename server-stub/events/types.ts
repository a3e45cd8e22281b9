// The event vocabulary: every campaign, update and device state change becomes one of these.
import { UPDATE_STATUSES } from "../../device/protocol";

/** What campaign_events recorded before the unified event table, plus stage_completed; "campaign." + each. */
export const CAMPAIGN_EVENT_KINDS = [
  "created", "approved", "scheduled", "started", "paused", "resumed", "stage_started", "soak_started", "stage_completed",
  "threshold_crossed", "rollback", "completed", "failed", "cancelled",
] as const;
export type CampaignEventKind = (typeof CAMPAIGN_EVENT_KINDS)[number];

/** deleted is part of the vocabulary for consumers, though the API has no route that deletes a device yet. */
export const DEVICE_EVENT_KINDS = ["registered", "updated", "deleted", "version_changed"] as const;
export type DeviceEventKind = (typeof DEVICE_EVENT_KINDS)[number];

export const EVENT_TYPES: readonly string[] = [
  ...CAMPAIGN_EVENT_KINDS.map((k) => `campaign.${k}`),
  ...UPDATE_STATUSES.map((s) => `update.${s}`),
  ...DEVICE_EVENT_KINDS.map((k) => `device.${k}`),
];

/** True when `prefix` selects at least one known type ("campaign." , "update.failed", "device"). */
export function isKnownTypePrefix(prefix: string): boolean {
  return prefix.length > 0 && EVENT_TYPES.some((t) => t.startsWith(prefix));
}

/** Repeatable and comma-separated type filters, flattened; empty entries dropped. */
export function splitTypes(values: readonly string[] | string | undefined): string[] {
  const list = values === undefined ? [] : typeof values === "string" ? [values] : values;
  return list.flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
}
