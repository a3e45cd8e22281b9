// Device updates: assignment, what a device is offered, cancellation.
import { compareVersions, isTerminalStatus, type AvailableUpdatesResponse, type UpdatePriority } from "../../device/protocol";
import { ApiError, conflict, notFound } from "../api-error";
import type { Ctx } from "../context";
import { lockDevice } from "../db";
import { newId } from "../ids";
import { updateEvent } from "../events/emit";
import { logEvent } from "../log";
import { contactIsNews, ensureDevice, getDevice, recordContact, type DeviceReport } from "../model/devices";
import { getFirmware, type FirmwareRow } from "../model/firmware";
import { checkSnapshot, type CheckSnapshot } from "./check-snapshot";
import { activeUpdateFor, getUpdate, type UpdateRow } from "../model/updates";
import { checkCompatibility } from "./compatibility";
import { deltaOffer } from "./deltas";
import { serverBaseFor, signedManifest } from "./manifest";
import { syncCampaignDevice } from "./status-reports";

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
  updateEvent(ctx.db, u, now, { reason: o.reason ?? null, retry_of: o.retryOf ?? null });
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
  /** Give an unknown device id a waiting record instead of refusing it (bulk provisioning). */
  create_missing?: boolean;
}

/** POST /devices/{id}/update and each device of a bulk update. */
export function requestDeviceUpdate(ctx: Ctx, deviceId: string, req: DeviceUpdateRequest): UpdateRow {
  return ctx.db.transaction(() => {
    const fw = getFirmware(ctx.db, req.firmware_id);
    if (!fw) throw notFound("firmware", req.firmware_id);
    if (!req.create_missing && !getDevice(ctx.db, deviceId)) {
      throw new ApiError(404, "DEVICE_NOT_FOUND", `device ${deviceId} not found: register it (POST /api/v1/devices) or pass "create_missing": true`, { devices: [deviceId] });
    }
    const device = ensureDevice(ctx.db, deviceId, ctx.clock.now());
    lockDevice(ctx.db, deviceId); // another replica cannot insert an update between the check below and ours
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

type CheckReport = DeviceReport & { running_sha256?: string };

/** What a check writes when it has news: the contact, the image the device runs, the version an update started
 * from. In one transaction: in WAL mode a statement outside one takes and releases SQLite's locks itself. */
function recordCheck(ctx: Ctx, deviceId: string, report: CheckReport): void {
  const before = recordContact(ctx.db, deviceId, report, ctx.clock.now());
  if (report.running_sha256 && report.running_sha256 !== before.running_sha256) ctx.db.prepare("UPDATE devices SET running_sha256 = ? WHERE device_id = ?").run(report.running_sha256, deviceId);
  const u = activeUpdateFor(ctx.db, deviceId);
  if (u && u.from_version === null && report.current_version) {
    ctx.db.prepare("UPDATE updates SET from_version = ? WHERE update_id = ?").run(report.current_version, u.update_id);
  }
}

/** recordCheck wrapped once per database: better-sqlite3 builds a transaction function at some cost. */
const recordCheckTx = new WeakMap<Ctx["db"], typeof recordCheck>();

/** Whether recordCheck has anything to write for this report. */
function checkHasNews(s: CheckSnapshot, report: CheckReport, now: number): boolean {
  if (contactIsNews(s.device, report, now)) return true;
  if (report.running_sha256 && report.running_sha256 !== s.device.running_sha256) return true;
  return s.update !== null && s.update.from_version === null && !!report.current_version;
}

export interface CheckAnswer {
  /** The signed manifest (the same object while reused: manifest.ts), or the shared "no update" answer. */
  body: AvailableUpdatesResponse;
  /** The key list's version, which every answer carries so devices behind it fetch it; null: no list yet. */
  keyListVersion: number | null;
}

export const NO_UPDATE: AvailableUpdatesResponse = Object.freeze({ update_available: false });

/** GET /devices/{id}/available-updates: records the contact, returns the signed manifest of the assigned update.
 * `reached`: the server address the device's connection reached (routes/reached-origin.ts). A check that says
 * nothing new is one read (check-snapshot.ts); one with news writes it first, then reads. */
export function availableUpdates(ctx: Ctx, deviceId: string, report: CheckReport, reached: string | null = null): CheckAnswer {
  let s = checkSnapshot(ctx.db, deviceId);
  if (!s || checkHasNews(s, report, ctx.clock.now())) {
    let tx = recordCheckTx.get(ctx.db);
    if (!tx) recordCheckTx.set(ctx.db, (tx = ctx.db.transaction(recordCheck)));
    tx(ctx, deviceId, report);
    s = checkSnapshot(ctx.db, deviceId);
    if (!s) throw notFound("device", deviceId); // deleted meanwhile
  }
  const { update: u, firmware: fw } = s;
  if (!u) return { body: NO_UPDATE, keyListVersion: s.keyListVersion };
  if (!fw) throw new ApiError(500, "INTERNAL", `firmware ${u.firmware_id} of update ${u.update_id} is missing`);
  // A delta from the image the device says it runs, when one is stored (the device checks that claim itself).
  const delta = deltaOffer(ctx, fw, report.running_sha256, serverBaseFor(ctx, reached));
  const patchSize = delta?.patch_size ?? null;
  if (patchSize !== u.patch_size) ctx.db.prepare("UPDATE updates SET patch_size = ? WHERE update_id = ?").run(patchSize, u.update_id);
  return { body: signedManifest(ctx, u, fw, delta, reached, s.signers), keyListVersion: s.keyListVersion };
}

export function cancelUpdateRow(ctx: Ctx, u: UpdateRow, reason: string | null): UpdateRow {
  const now = ctx.clock.now();
  ctx.db.prepare("UPDATE updates SET status = 'cancelled', cancel_reason = ?, completed_at = ? WHERE update_id = ?").run(reason, now, u.update_id);
  const updated = getUpdate(ctx.db, u.update_id)!;
  updateEvent(ctx.db, updated, now, { reason });
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

