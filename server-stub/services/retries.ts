// Retries (manual and automatic) and silence timeouts.
import { NON_RETRYABLE_ERROR_CODES, RETRYABLE_STATUSES } from "../../device/protocol";
import { conflict, notFound } from "../api-error";
import type { Ctx } from "../context";
import { lockDevice } from "../db";
import { getFirmware } from "../model/firmware";
import { ACTIVE_IN, activeUpdateFor, getUpdate, type UpdateRow } from "../model/updates";
import { failUpdate, lockUpdate } from "./status-reports";
import { assignUpdate } from "./updates";

/** A new attempt of a failed/rolled-back/cancelled update, as a new update linked by retry_of. */
export function retryUpdate(ctx: Ctx, updateId: string, opts: { max_retries?: number; retry_delay?: number }): UpdateRow {
  return ctx.db.transaction(() => {
    const u = lockUpdate(ctx.db, updateId);
    if (!u) throw notFound("update", updateId);
    if (!(RETRYABLE_STATUSES as readonly string[]).includes(u.status)) throw conflict("NOT_RETRYABLE", `update ${updateId} is ${u.status}; only failed, rolled_back or cancelled updates can be retried`);
    if (u.retried_by) throw conflict("ALREADY_RETRIED", `update ${updateId} was already retried as ${u.retried_by}`);
    return createRetry(ctx, u, opts.max_retries ?? u.max_retries, opts.retry_delay ?? u.retry_delay_s);
  })();
}

function createRetry(ctx: Ctx, u: UpdateRow, maxRetries: number, retryDelayS: number): UpdateRow {
  lockDevice(ctx.db, u.device_id);
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
    const retried = ctx.db.transaction(() => {
      if (lockUpdate(ctx.db, u.update_id)?.retried_by !== null) return false; // retried meanwhile (an operator, another replica)
      createRetry(ctx, u, u.max_retries - 1, u.retry_delay_s);
      return true;
    })();
    if (retried) n++;
  }
  return n;
}

/** Fails updates whose device has been silent longer than their timeout. */
export function expireSilentUpdates(ctx: Ctx): number {
  const now = ctx.clock.now();
  const rows = ctx.db
    .prepare(
      `SELECT * FROM updates WHERE status IN ${ACTIVE_IN}
       AND last_activity_at + COALESCE(timeout_minutes, ?) * 60000 <= ?`,
    )
    .all(ctx.config.defaultTimeoutMinutes || null, now) as UpdateRow[]; // NULL timeout never expires
  for (const u of rows) {
    ctx.db.transaction(() => {
      const current = lockUpdate(ctx.db, u.update_id);
      if (current?.status !== u.status || current.last_activity_at !== u.last_activity_at) return; // it reported meanwhile
      failUpdate(ctx, u, "TIMEOUT", `no report for ${u.timeout_minutes ?? ctx.config.defaultTimeoutMinutes} minutes while ${u.status}`);
    })();
  }
  return rows.length;
}
