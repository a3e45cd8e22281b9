// Device updates: assignment, the device's status reports, cancel/retry/rollback,
// timeouts. Campaign bookkeeping for an update happens in the same transaction.
import {
  compareVersions, isAllowedTransition, isTerminalStatus, NON_RETRYABLE_ERROR_CODES,
  type AvailableUpdatesResponse, type StatusReport, type UpdatePriority,
} from "../../device/protocol";
import { ApiError, badRequest, conflict, notFound } from "../api-error";
import type { Ctx } from "../context";
import { logEvent } from "../log";
import { ensureDevice, getDevice, recordContact, type DeviceReport } from "../model/devices";
import { findFirmwareByVersion, getFirmware, type FirmwareRow } from "../model/firmware";
import { activeUpdateFor, getUpdate, type UpdateRow } from "../model/updates";
import { newId } from "../ids";
import { checkCompatibility } from "./compatibility";
import { signedManifest } from "./manifest";

export interface AssignOptions {
  deviceId: string;
  firmware: FirmwareRow;
  priority: UpdatePriority;
  campaignId?: string | null;
  mandatory?: boolean;
  force?: boolean;
  pre?: string[];
  post?: string[];
  rollback?: boolean;
  revertsUpdateId?: string | null;
  maxRetries?: number;
  retryDelayS?: number;
  timeoutMinutes?: number | null;
  reason?: string | null;
  attempt?: number;
  retryOf?: string | null;
}

/** Creates a scheduled update and tells the device over MQTT. */
export function assignUpdate(ctx: Ctx, o: AssignOptions): UpdateRow {
  const now = ctx.clock.now();
  const device = ensureDevice(ctx.db, o.deviceId, now);
  const id = newId("upd");
  ctx.db
    .prepare(
      `INSERT INTO updates(update_id, device_id, campaign_id, firmware_id, status, from_version, to_version, from_firmware_id,
         rollback, reverts_update_id, priority, mandatory, force, pre_update_commands, post_update_commands, attempt,
         max_retries, retry_delay_s, retry_of, timeout_minutes, created_at, last_activity_at, reason)
       VALUES (?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      id, o.deviceId, o.campaignId ?? null, o.firmware.firmware_id, device.current_version, o.firmware.version, device.current_firmware_id,
      o.rollback ? 1 : 0, o.revertsUpdateId ?? null, o.priority,
      (o.mandatory ?? (o.priority === "critical" || o.priority === "emergency")) ? 1 : 0, o.force ? 1 : 0,
      JSON.stringify(o.pre ?? []), JSON.stringify(o.post ?? []), o.attempt ?? 1, o.maxRetries ?? 0, o.retryDelayS ?? 0,
      o.retryOf ?? null, o.timeoutMinutes ?? null, now, now, o.reason ?? null,
    );
  const u = getUpdate(ctx.db, id)!;
  logEvent(ctx.log, o.rollback ? "rollback_assigned" : "update_assigned", {
    campaign_id: o.campaignId ?? undefined, device_id: o.deviceId, update_id: id, firmware_id: o.firmware.firmware_id, version: o.firmware.version,
  });
  ctx.notify(o.deviceId, { action: o.rollback ? "rollback" : "update_available", update_id: id, version: o.firmware.version, mandatory: u.mandatory === 1 });
  return u;
}

export interface DeviceUpdateRequest {
  firmware_id: string;
  priority?: UpdatePriority;
  force?: boolean;
  pre_update_commands?: string[];
  post_update_commands?: string[];
  max_retries?: number;
  timeout_minutes?: number;
}

/** POST /devices/{id}/update and each device of a bulk update. */
export function requestDeviceUpdate(ctx: Ctx, deviceId: string, req: DeviceUpdateRequest): UpdateRow {
  return ctx.db.transaction(() => {
    const fw = getFirmware(ctx.db, req.firmware_id);
    if (!fw) throw notFound("firmware", req.firmware_id);
    const device = ensureDevice(ctx.db, deviceId, ctx.clock.now());
    // force: allow reinstalling the same or an older version, and replace an update in flight.
    // It never overrides model, chip or secure_version: the device would refuse those anyway.
    const compat = checkCompatibility(fw, device, { allowSameOrOlder: req.force === true });
    if (!compat.compatible) throw conflict("INCOMPATIBLE_FIRMWARE", compat.reasons.map((r) => r.message).join("; "), { reasons: compat.reasons });
    const active = activeUpdateFor(ctx.db, deviceId);
    if (active) {
      if (!req.force) throw conflict("UPDATE_IN_PROGRESS", `device ${deviceId} already has update ${active.update_id} (${active.status}); use force to replace it`);
      cancelUpdateRow(ctx, active, "superseded by a forced update");
    }
    const older = device.current_version !== null && (compareVersions(fw.version, device.current_version) ?? 0) < 0;
    return assignUpdate(ctx, {
      deviceId, firmware: fw, priority: req.priority ?? "normal", force: req.force ?? false,
      pre: req.pre_update_commands, post: req.post_update_commands, maxRetries: req.max_retries, timeoutMinutes: req.timeout_minutes ?? null,
      rollback: older, // an operator-forced downgrade must be flagged or the device rejects it as a downgrade
    });
  })();
}

/** GET /devices/{id}/available-updates: records the contact, returns the signed manifest of the assigned update. */
export function availableUpdates(ctx: Ctx, deviceId: string, report: DeviceReport): AvailableUpdatesResponse {
  const u = ctx.db.transaction(() => {
    recordContact(ctx.db, deviceId, report, ctx.clock.now());
    const active = activeUpdateFor(ctx.db, deviceId);
    if (active && active.from_version === null && report.current_version) {
      ctx.db.prepare("UPDATE updates SET from_version = ? WHERE update_id = ?").run(report.current_version, active.update_id);
    }
    return active;
  })();
  if (!u) return { update_available: false };
  const fw = getFirmware(ctx.db, u.firmware_id);
  if (!fw) throw new ApiError(500, "INTERNAL", `firmware ${u.firmware_id} of update ${u.update_id} is missing`);
  return signedManifest(ctx, u, fw);
}

export interface ReportResult {
  update: UpdateRow;
  duplicate: boolean;
}

/** A device's status report (HTTP or MQTT). Idempotent per sequence; rejects impossible transitions. */
export function reportStatus(ctx: Ctx, updateId: string, r: StatusReport, via: "http" | "mqtt"): ReportResult {
  const result = ctx.db.transaction((): ReportResult => {
    const u = getUpdate(ctx.db, updateId);
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
      .run(updateId, seq, r.status, r.progress ?? null, r.error_code ?? null, r.error_message ?? null, r.timestamp ?? null, now, via);
    const terminal = isTerminalStatus(r.status);
    const progress = r.status === "completed" ? 100 : (r.progress ?? u.progress);
    const failing = r.status === "failed" || r.status === "rolled_back";
    ctx.db
      .prepare(
        `UPDATE updates SET status = ?, progress = ?, last_activity_at = ?, started_at = COALESCE(started_at, ?),
           completed_at = ?, error_code = ?, error_message = ? WHERE update_id = ?`,
      )
      .run(
        r.status, progress, now, terminal && u.started_at === null ? u.created_at : now, terminal ? now : null,
        failing ? (r.error_code ?? u.error_code) : u.error_code, failing ? (r.error_message ?? u.error_message) : u.error_message, updateId,
      );
    const updated = getUpdate(ctx.db, updateId)!;
    if (r.status === "completed") onCompleted(ctx, updated);
    syncCampaignDevice(ctx, updated);
    const fields = { campaign_id: u.campaign_id ?? undefined, device_id: u.device_id, update_id: updateId, status: r.status, progress: progress, via };
    if (failing) logEvent(ctx.log, "update_failed", { ...fields, error_code: r.error_code ?? "UNKNOWN" }, "warn");
    else logEvent(ctx.log, r.status === "completed" ? "update_completed" : "update_status", fields);
    return { update: updated, duplicate: false };
  })();
  if (!result.duplicate && isTerminalStatus(result.update.status)) ctx.kick();
  return result;
}

function onCompleted(ctx: Ctx, u: UpdateRow): void {
  // previous_* come from the update, not the device row: the device may already have
  // polled with its new version before it reported completion.
  ctx.db
    .prepare(
      `UPDATE devices SET previous_version = ?, previous_firmware_id = ?, current_version = ?, current_firmware_id = ?, updated_at = ?
       WHERE device_id = ?`,
    )
    .run(u.from_version, u.from_firmware_id, u.to_version, u.firmware_id, ctx.clock.now(), u.device_id);
  if (u.rollback === 1 && u.reverts_update_id) {
    // The firmware this rollback undid: its update is now rolled_back.
    ctx.db.prepare("UPDATE updates SET status = 'rolled_back' WHERE update_id = ? AND status = 'completed'").run(u.reverts_update_id);
  }
}

/** Mirrors an update's state into its campaign's device list. */
function syncCampaignDevice(ctx: Ctx, u: UpdateRow): void {
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
  const state = { scheduled: "in_progress", downloading: "in_progress", installing: "in_progress", completed: "completed", failed: "failed", rolled_back: "failed", cancelled: "cancelled" }[u.status];
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
  syncCampaignDevice(ctx, getUpdate(ctx.db, u.update_id)!);
  logEvent(ctx.log, "update_failed", { campaign_id: u.campaign_id ?? undefined, device_id: u.device_id, update_id: u.update_id, error_code: code }, "warn");
}

function cancelUpdateRow(ctx: Ctx, u: UpdateRow, reason: string | null): UpdateRow {
  const now = ctx.clock.now();
  ctx.db.prepare("UPDATE updates SET status = 'cancelled', cancel_reason = ?, completed_at = ? WHERE update_id = ?").run(reason, now, u.update_id);
  const updated = getUpdate(ctx.db, u.update_id)!;
  syncCampaignDevice(ctx, updated);
  logEvent(ctx.log, "update_cancelled", { campaign_id: u.campaign_id ?? undefined, device_id: u.device_id, update_id: u.update_id, reason: reason ?? undefined });
  ctx.notify(u.device_id, { action: "cancel", update_id: u.update_id, version: u.to_version, mandatory: u.mandatory === 1 });
  return updated;
}

export function cancelUpdate(ctx: Ctx, updateId: string, reason: string | null): UpdateRow {
  const row = ctx.db.transaction(() => {
    const u = getUpdate(ctx.db, updateId);
    if (!u) throw notFound("update", updateId);
    if (isTerminalStatus(u.status)) throw conflict("UPDATE_FINISHED", `update ${updateId} is already ${u.status}`);
    return cancelUpdateRow(ctx, u, reason);
  })();
  ctx.kick();
  return row;
}

export { cancelUpdateRow };

/** A new attempt of a failed/rolled-back/cancelled update, as a new update linked by retry_of. */
export function retryUpdate(ctx: Ctx, updateId: string, opts: { max_retries?: number; retry_delay?: number }): UpdateRow {
  return ctx.db.transaction(() => {
    const u = getUpdate(ctx.db, updateId);
    if (!u) throw notFound("update", updateId);
    if (!["failed", "rolled_back", "cancelled"].includes(u.status)) throw conflict("NOT_RETRYABLE", `update ${updateId} is ${u.status}; only failed, rolled_back or cancelled updates can be retried`);
    if (u.retried_by) throw conflict("ALREADY_RETRIED", `update ${updateId} was already retried as ${u.retried_by}`);
    return createRetry(ctx, u, opts.max_retries ?? u.max_retries, opts.retry_delay ?? u.retry_delay_s);
  })();
}

function createRetry(ctx: Ctx, u: UpdateRow, maxRetries: number, retryDelayS: number): UpdateRow {
  const active = activeUpdateFor(ctx.db, u.device_id);
  if (active) throw conflict("UPDATE_IN_PROGRESS", `device ${u.device_id} has update ${active.update_id} in progress`);
  const fw = getFirmware(ctx.db, u.firmware_id)!;
  const next = assignUpdate(ctx, {
    deviceId: u.device_id, firmware: fw, priority: u.priority, campaignId: u.campaign_id, mandatory: u.mandatory === 1, force: u.force === 1,
    pre: JSON.parse(u.pre_update_commands) as string[], post: JSON.parse(u.post_update_commands) as string[],
    rollback: u.rollback === 1, revertsUpdateId: u.reverts_update_id, maxRetries, retryDelayS, timeoutMinutes: u.timeout_minutes,
    reason: u.reason, attempt: u.attempt + 1, retryOf: u.update_id,
  });
  ctx.db.prepare("UPDATE updates SET retried_by = ? WHERE update_id = ?").run(next.update_id, u.update_id);
  if (u.campaign_id && u.rollback === 0) {
    ctx.db.prepare("UPDATE campaign_devices SET update_id = ?, state = 'in_progress', finished_at = NULL WHERE campaign_id = ? AND update_id = ?").run(next.update_id, u.campaign_id, u.update_id);
  }
  return next;
}

/** Retries failed updates that still have retries left once their delay is over. */
export function runAutoRetries(ctx: Ctx): number {
  const now = ctx.clock.now();
  const due = ctx.db
    .prepare(
      `SELECT u.* FROM updates u LEFT JOIN campaigns c ON c.campaign_id = u.campaign_id
       WHERE u.status = 'failed' AND u.max_retries > 0 AND u.retried_by IS NULL AND u.completed_at + u.retry_delay_s * 1000 <= ?
         AND (c.campaign_id IS NULL OR c.status = 'in_progress')`,
    )
    .all(now) as UpdateRow[];
  let n = 0;
  for (const u of due) {
    if (u.error_code && (NON_RETRYABLE_ERROR_CODES as readonly string[]).includes(u.error_code)) continue;
    if (activeUpdateFor(ctx.db, u.device_id)) continue;
    ctx.db.transaction(() => createRetry(ctx, u, u.max_retries - 1, u.retry_delay_s))();
    n++;
  }
  return n;
}

/** Fails updates whose device has been silent longer than their timeout. */
export function expireSilentUpdates(ctx: Ctx): number {
  const now = ctx.clock.now();
  const rows = ctx.db
    .prepare(
      `SELECT * FROM updates WHERE status IN ('scheduled','downloading','installing')
       AND last_activity_at + COALESCE(timeout_minutes, ?) * 60000 <= ?`,
    )
    .all(ctx.config.defaultTimeoutMinutes || null, now) as UpdateRow[]; // NULL timeout never expires
  for (const u of rows) {
    ctx.db.transaction(() => failUpdate(ctx, u, "TIMEOUT", `no report for ${u.timeout_minutes ?? ctx.config.defaultTimeoutMinutes} minutes while ${u.status}`))();
  }
  return rows.length;
}

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
  const active = activeUpdateFor(ctx.db, original.device_id);
  if (active) cancelUpdateRow(ctx, active, "superseded by a campaign rollback");
  const u = assignUpdate(ctx, {
    deviceId: original.device_id, firmware: fw, priority: "critical", campaignId, mandatory: true, rollback: true,
    revertsUpdateId: original.update_id, reason,
  });
  ctx.db.prepare("UPDATE campaign_devices SET rollback_update_id = ? WHERE campaign_id = ? AND device_id = ?").run(u.update_id, campaignId, original.device_id);
  return u;
}
