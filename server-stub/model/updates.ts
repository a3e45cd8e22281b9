import { iso } from "../clock";
import type { Db } from "../db";
import { json, sqlList } from "../db";
import { ACTIVE_STATUSES, statusReportSchema, type CoredumpSummary, type UpdatePriority, type UpdateStatus } from "../../device/protocol";

export interface UpdateRow {
  update_id: string;
  device_id: string;
  campaign_id: string | null;
  firmware_id: string;
  status: UpdateStatus;
  progress: number;
  from_version: string | null;
  to_version: string;
  from_firmware_id: string | null;
  rollback: number;
  reverts_update_id: string | null;
  priority: UpdatePriority;
  mandatory: number;
  force: number;
  pre_update_commands: string;
  post_update_commands: string;
  error_code: string | null;
  error_message: string | null;
  attempt: number;
  max_retries: number;
  retry_delay_s: number;
  retry_of: string | null;
  retried_by: string | null;
  timeout_minutes: number | null;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  last_activity_at: number;
  cancel_reason: string | null;
  reason: string | null;
  /** Set when a device's report contradicted this record (its from/to versions); the report is kept. */
  report_conflict: string | null;
  /** How the device said the image came ("delta" or "full"), why not a delta, and what a delta saved. */
  delivery: "delta" | "full" | null;
  delivery_note: string | null;
  /** Size of the patch offered with the last manifest, if any. */
  patch_size: number | null;
  bytes_saved: number | null;
  /** rolled_back: the reset reason and core dump summary (JSON) the device reported. */
  reset_reason?: string | null;
  coredump?: string | null;
}

/** SQL list of the protocol's active statuses, for `status IN ${ACTIVE_IN}`. */
export const ACTIVE_IN = sqlList(ACTIVE_STATUSES);

export function getUpdate(db: Db, id: string): UpdateRow | undefined {
  return db.prepare("SELECT * FROM updates WHERE update_id = ?").get(id) as UpdateRow | undefined;
}

export function activeUpdateFor(db: Db, deviceId: string): UpdateRow | undefined {
  return db
    .prepare(`SELECT * FROM updates WHERE device_id = ? AND status IN ${ACTIVE_IN} ORDER BY created_at DESC, rowid DESC LIMIT 1`)
    .get(deviceId) as UpdateRow | undefined;
}

export function updateToApi(u: UpdateRow) {
  const end = u.completed_at;
  const start = u.started_at ?? u.created_at;
  return {
    update_id: u.update_id,
    device_id: u.device_id,
    campaign_id: u.campaign_id,
    firmware_id: u.firmware_id,
    status: u.status,
    progress_percentage: u.progress,
    from_version: u.from_version,
    to_version: u.to_version,
    rollback: u.rollback === 1,
    reverts_update_id: u.reverts_update_id,
    priority: u.priority,
    mandatory: u.mandatory === 1,
    pre_update_commands: json.parse<string[]>(u.pre_update_commands, []),
    post_update_commands: json.parse<string[]>(u.post_update_commands, []),
    created_at: iso(u.created_at),
    started_at: iso(u.started_at),
    completed_at: iso(u.completed_at),
    duration_seconds: end !== null && u.status === "completed" ? Math.round((end - start) / 1000) : null,
    error: u.error_code || u.error_message ? { code: u.error_code ?? "UNKNOWN", message: u.error_message ?? "" } : null,
    attempt: u.attempt,
    max_retries: u.max_retries,
    retry_delay: u.retry_delay_s,
    retry_of: u.retry_of,
    retried_by: u.retried_by,
    timeout_minutes: u.timeout_minutes,
    cancel_reason: u.cancel_reason,
    reason: u.reason,
    report_conflict: u.report_conflict,
    delivery: u.delivery ?? null,
    delivery_note: u.delivery_note ?? null,
    bytes_saved: u.bytes_saved ?? 0,
    reset_reason: u.reset_reason ?? null,
    coredump: json.parse<CoredumpSummary | null>(u.coredump ?? null, null),
  };
}

const nstr = { type: ["string", "null"] };
export const updateSchema = {
  type: "object",
  properties: {
    update_id: { type: "string" },
    device_id: { type: "string" },
    campaign_id: nstr,
    firmware_id: { type: "string" },
    status: { type: "string" },
    progress_percentage: { type: "number" },
    from_version: nstr,
    to_version: { type: "string" },
    rollback: { type: "boolean" },
    reverts_update_id: nstr,
    priority: { type: "string" },
    mandatory: { type: "boolean" },
    pre_update_commands: { type: "array", items: { type: "string" } },
    post_update_commands: { type: "array", items: { type: "string" } },
    created_at: nstr,
    started_at: nstr,
    completed_at: nstr,
    duration_seconds: { type: ["integer", "null"] },
    error: { type: ["object", "null"], properties: { code: { type: "string" }, message: { type: "string" } } },
    attempt: { type: "integer" },
    max_retries: { type: "integer" },
    retry_delay: { type: "integer" },
    retry_of: nstr,
    retried_by: nstr,
    timeout_minutes: { type: ["integer", "null"] },
    cancel_reason: nstr,
    reason: nstr,
    report_conflict: nstr,
    delivery: { type: ["string", "null"], enum: ["delta", "full", null] },
    delivery_note: nstr,
    bytes_saved: { type: "integer" },
    reset_reason: nstr,
    coredump: statusReportSchema.properties.coredump,
  },
};
