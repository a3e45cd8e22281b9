// A device's status reports (HTTP or MQTT) and server-side failures; campaign
// bookkeeping for an update happens in the same transaction.
import { isAllowedTransition, isTerminalStatus, type StatusReport, type UpdateStatus } from "../../device/protocol";
import { conflict, notFound } from "../api-error";
import type { Ctx } from "../context";
import { forUpdate, lockDevice, type Db } from "../db";
import { deviceEvent, progressWorthAnEvent, updateEvent } from "../events/emit";
import { logEvent } from "../log";
import { getDevice } from "../model/devices";
import { getUpdate, type UpdateRow } from "../model/updates";

export interface ReportResult {
  update: UpdateRow;
  duplicate: boolean;
}

/** A device's status report (HTTP or MQTT). Idempotent per sequence; rejects impossible transitions. */
export function reportStatus(ctx: Ctx, updateId: string, r: StatusReport, via: "http" | "mqtt"): ReportResult {
  const result = ctx.db.transaction((): ReportResult => {
    const u = lockUpdate(ctx.db, updateId);
    if (!u) throw notFound("update", updateId);
    const seq = r.sequence ?? null;
    if (seq !== null && ctx.db.prepare("SELECT 1 FROM status_reports WHERE update_id = ? AND sequence = ?").get(updateId, seq)) {
      return { update: u, duplicate: true };
    }
    if (isTerminalStatus(u.status) && u.status === r.status) return { update: u, duplicate: true }; // a resent final report
    if (u.status === "cancelled") throw conflict("UPDATE_CANCELLED", `update ${updateId} was cancelled${u.cancel_reason ? ": " + u.cancel_reason : ""}`);
    if (!isAllowedTransition(u.status, r.status)) throw conflict("INVALID_TRANSITION", `update ${updateId} cannot go from ${u.status} to ${r.status}`);
    const now = ctx.clock.now();
    ctx.db
      .prepare("INSERT INTO status_reports(update_id, sequence, status, progress, error_code, error_message, device_timestamp, received_at, via) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .run(updateId, seq, r.status, r.progress ?? null, r.error_code ?? null, r.error_message ?? r.reason ?? null, r.timestamp ?? null, now, via);
    const terminal = isTerminalStatus(r.status);
    const progress = r.status === "completed" ? 100 : (r.progress ?? u.progress);
    const failing = r.status === "failed" || r.status === "rolled_back";
    ctx.db
      .prepare(
        `UPDATE updates SET status = ?, progress = ?, last_activity_at = ?, started_at = COALESCE(started_at, ?),
           completed_at = ?, error_code = ?, error_message = ? WHERE update_id = ?`,
      )
      .run(
        // A deferral is not a start: the application has not let the update begin.
        r.status, progress, now, r.status === "deferred" ? null : terminal && u.started_at === null ? u.created_at : now, terminal ? now : null,
        failing ? (r.error_code ?? u.error_code) : u.error_code, failing ? (r.error_message ?? u.error_message) : u.error_message, updateId,
      );
    flagConflict(ctx, u, r);
    if (r.delivery) {
      // How the image came; a delta saved the image's size less the patch's (the patch offered with the manifest).
      const fw = ctx.db.prepare("SELECT file_size FROM firmware WHERE firmware_id = ?").get(u.firmware_id) as { file_size: number } | undefined;
      const saved = r.delivery === "delta" && fw && u.patch_size !== null ? fw.file_size - u.patch_size : 0;
      ctx.db.prepare("UPDATE updates SET delivery = ?, delivery_note = ?, bytes_saved = ? WHERE update_id = ?").run(r.delivery, r.delivery_note ?? null, saved, updateId);
    }
    // How a rejected image ended (bounded by the report schema: a task name, a pc, 16 backtrace entries).
    if (r.status === "rolled_back" && (r.reset_reason || r.coredump))
      ctx.db.prepare("UPDATE updates SET reset_reason = ?, coredump = ? WHERE update_id = ?").run(r.reset_reason ?? null, r.coredump ? JSON.stringify(r.coredump) : null, updateId);
    // The device knows what it ran before better than a waiting record does.
    if (r.from_version && u.from_version === null) ctx.db.prepare("UPDATE updates SET from_version = ? WHERE update_id = ?").run(r.from_version, updateId);
    const updated = getUpdate(ctx.db, updateId)!;
    if (progressWorthAnEvent(u, updated)) updateEvent(ctx.db, updated, now, { via });
    if (r.status === "completed") onCompleted(ctx, updated, r.to_version ?? null);
    syncCampaignDevice(ctx, updated);
    const fields = { campaign_id: u.campaign_id ?? undefined, device_id: u.device_id, update_id: updateId, status: r.status, progress: progress, via };
    if (failing) logEvent(ctx.log, "update_failed", { ...fields, error_code: r.error_code ?? "UNKNOWN" }, "warn");
    else if (r.status === "deferred") logEvent(ctx.log, "update_deferred", { ...fields, reason: r.reason ?? undefined, until: r.deferred_until ?? undefined });
    else logEvent(ctx.log, r.status === "completed" ? "update_completed" : "update_status", fields);
    return { update: updated, duplicate: false };
  })();
  if (!result.duplicate && isTerminalStatus(result.update.status)) ctx.kick();
  return result;
}

/** A report whose versions contradict the record (a device that was not where the server thought, or installed
 * something else) is kept, and the update is flagged with what disagreed, once. */
function flagConflict(ctx: Ctx, u: UpdateRow, r: StatusReport): void {
  const problems: string[] = [];
  if (r.from_version && u.from_version !== null && r.from_version !== u.from_version) problems.push(`from_version ${r.from_version}, the record says ${u.from_version}`);
  if (r.to_version && r.to_version !== u.to_version) problems.push(`to_version ${r.to_version}, the record says ${u.to_version}`);
  if (problems.length === 0) return;
  const conflict = `${r.status} reported with ${problems.join("; ")}`;
  ctx.db.prepare("UPDATE updates SET report_conflict = COALESCE(report_conflict, ?) WHERE update_id = ?").run(conflict, u.update_id);
  logEvent(ctx.log, "update_report_conflict", {
    campaign_id: u.campaign_id ?? undefined, device_id: u.device_id, update_id: u.update_id, status: r.status,
    from_version: r.from_version ?? undefined, to_version: r.to_version ?? undefined, expected_from: u.from_version ?? undefined, expected_to: u.to_version,
  }, "warn");
}

function onCompleted(ctx: Ctx, u: UpdateRow, reportedVersion: string | null): void {
  if (reportedVersion && reportedVersion !== u.to_version) {
    // The image's own version disagrees with the firmware record: believe the device, and say so.
    logEvent(ctx.log, "update_version_mismatch", { campaign_id: u.campaign_id ?? undefined, device_id: u.device_id, update_id: u.update_id, expected: u.to_version, reported: reportedVersion }, "warn");
  }
  // previous_* come from the update, not the device row: the device may already have
  // polled with its new version before it reported completion.
  const now = ctx.clock.now();
  const before = getDevice(ctx.db, u.device_id);
  const version = reportedVersion ?? u.to_version;
  ctx.db
    .prepare(
      `UPDATE devices SET previous_version = ?, previous_firmware_id = ?, current_version = ?, current_firmware_id = ?, updated_at = ?
       WHERE device_id = ?`,
    )
    .run(u.from_version, u.from_firmware_id, version, u.firmware_id, now, u.device_id);
  if (before && before.current_version !== version) {
    deviceEvent(ctx.db, u.device_id, now, "version_changed", { from_version: before.current_version, to_version: version }, u);
  }
  if (u.rollback === 1 && u.reverts_update_id) {
    // The firmware this rollback undid: its update is now rolled_back.
    if (ctx.db.prepare("UPDATE updates SET status = 'rolled_back' WHERE update_id = ? AND status = 'completed'").run(u.reverts_update_id).changes > 0) {
      updateEvent(ctx.db, getUpdate(ctx.db, u.reverts_update_id)!, now, { rolled_back_by: u.update_id });
    }
  }
}

/** The update; on PostgreSQL with its device's row and its own locked, in the order every path takes (campaign →
 * device → update), so a duplicate report sent to another replica, a retry or a timeout waits for this one. */
export function lockUpdate(db: Db, updateId: string): UpdateRow | undefined {
  const u = getUpdate(db, updateId);
  if (!u || db.dialect !== "pg") return u;
  lockDevice(db, u.device_id);
  return db.prepare(`SELECT * FROM updates WHERE update_id = ?${forUpdate(db)}`).get(updateId) as UpdateRow;
}

/** Mirrors an update's state into its campaign's device list. */
export function syncCampaignDevice(ctx: Ctx, u: UpdateRow): void {
  if (!u.campaign_id) return;
  const now = ctx.clock.now();
  if (u.rollback === 1) {
    if (u.status === "completed") {
      ctx.db.prepare("UPDATE campaign_devices SET state = 'rolled_back', note = ? WHERE campaign_id = ? AND rollback_update_id = ?").run(u.reason, u.campaign_id, u.update_id);
    } else if (isTerminalStatus(u.status)) {
      ctx.db.prepare("UPDATE campaign_devices SET note = ? WHERE campaign_id = ? AND rollback_update_id = ?").run(`rollback ${u.status}${u.error_code ? " " + u.error_code : ""}`, u.campaign_id, u.update_id);
    }
    return;
  }
  const state = ({ scheduled: "in_progress", deferred: "in_progress", downloading: "in_progress", installing: "in_progress", completed: "completed", failed: "failed", rolled_back: "failed", cancelled: "cancelled" } satisfies Record<UpdateStatus, string>)[u.status];
  ctx.db
    .prepare("UPDATE campaign_devices SET state = ?, finished_at = ? WHERE campaign_id = ? AND update_id = ? AND state NOT IN ('rolled_back')")
    .run(state, isTerminalStatus(u.status) ? now : null, u.campaign_id, u.update_id);
}

/** Server-side failure (timeout); same bookkeeping as a device report of "failed". */
export function failUpdate(ctx: Ctx, u: UpdateRow, code: string, message: string): void {
  const now = ctx.clock.now();
  ctx.db
    .prepare("UPDATE updates SET status = 'failed', error_code = ?, error_message = ?, completed_at = ?, started_at = COALESCE(started_at, created_at) WHERE update_id = ?")
    .run(code, message, now, u.update_id);
  const failed = getUpdate(ctx.db, u.update_id)!;
  updateEvent(ctx.db, failed, now, { via: "server" });
  syncCampaignDevice(ctx, failed);
  logEvent(ctx.log, "update_failed", { campaign_id: u.campaign_id ?? undefined, device_id: u.device_id, update_id: u.update_id, error_code: code }, "warn");
}
