// Update lifecycle shared by server and device.
import type { CoredumpSummary, ResetReason } from "./health";

/** Every status a DeviceUpdate can have (HOWTO DeviceUpdate model plus rolled_back/cancelled). */
export const UPDATE_STATUSES = [
  "scheduled",
  "deferred",
  "downloading",
  "installing",
  "completed",
  "failed",
  "rolled_back",
  "cancelled",
] as const;
export type UpdateStatus = (typeof UPDATE_STATUSES)[number];

/** Statuses a device may report; scheduled and cancelled are set by the server only. */
export const REPORTABLE_STATUSES = ["deferred", "downloading", "installing", "completed", "failed", "rolled_back"] as const;
export type ReportableStatus = (typeof REPORTABLE_STATUSES)[number];

export const TERMINAL_STATUSES: readonly UpdateStatus[] = ["completed", "failed", "rolled_back", "cancelled"];

export function isTerminalStatus(s: UpdateStatus): boolean {
  return TERMINAL_STATUSES.includes(s);
}

/** Updates still in flight: offered to the device, whose firmware it may download. */
export const ACTIVE_STATUSES = ["scheduled", "deferred", "downloading", "installing"] as const satisfies readonly UpdateStatus[];

/** Finished without success: an operator may retry these. */
export const RETRYABLE_STATUSES = ["failed", "rolled_back", "cancelled"] as const satisfies readonly UpdateStatus[];

/**
 * Device-reported transitions the server accepts. Reports may skip steps (a lost
 * "downloading" must not block "completed"), but never go backwards. rolled_back means
 * the device booted the new image and went back to the old one (e.g. self-test failed),
 * so it is only possible once installing started. deferred means the application asked to wait ("busy
 * until…"): the update stays offered and is not a failure; it is only possible before the download starts.
 */
export const ALLOWED_TRANSITIONS: Readonly<Record<UpdateStatus, readonly ReportableStatus[]>> = {
  scheduled: ["deferred", "downloading", "installing", "completed", "failed"],
  deferred: ["deferred", "downloading", "installing", "completed", "failed"],
  downloading: ["downloading", "installing", "completed", "failed"],
  installing: ["installing", "completed", "failed", "rolled_back"],
  completed: [],
  failed: [],
  rolled_back: [],
  cancelled: [],
};

export function isAllowedTransition(from: UpdateStatus, to: ReportableStatus): boolean {
  return ALLOWED_TRANSITIONS[from].includes(to);
}

/** Body of POST /api/v1/updates/{update_id}/status (and, with update_id, of the MQTT status topic). */
export interface StatusReport {
  status: ReportableStatus;
  /** 0..100; may be null/absent when unknown. */
  progress?: number | null;
  error_code?: string | null;
  error_message?: string | null;
  /** Device clock, ISO 8601; informational (device clocks are not trusted). */
  timestamp?: string | null;
  /** Monotonic per update on the device; a repeated sequence is ignored by the server. */
  sequence?: number | null;
  from_version?: string | null;
  to_version?: string | null;
  /** deferred only: why the application asked to wait, and until when (device clock, ISO 8601). */
  reason?: string | null;
  deferred_until?: string | null;
  /** How the image comes: a delta rebuilt from the running image, or the full image (with the reason in the note). */
  delivery?: "delta" | "full" | null;
  delivery_note?: string | null;
  /** rolled_back only: how the rejected image ended — the reset reason of the boot that reports (a crash, or
   * "software" after a failed self-test) and the core dump summary a crash left in flash, if any. */
  reset_reason?: ResetReason | null;
  coredump?: CoredumpSummary | null;
}

export interface MqttStatusReport extends StatusReport {
  update_id: string;
}
