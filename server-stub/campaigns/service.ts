// Campaign lifecycle operations behind the REST routes.
import { ApiError, badRequest, conflict, notFound } from "../api-error";
import type { Principal } from "../auth/principal";
import type { Ctx } from "../context";
import { forUpdate } from "../db";
import { newId } from "../ids";
import { logEvent } from "../log";
import { assertDeviceId, deviceGroups, ensureDevice, getDevice } from "../model/devices";
import { getFirmware } from "../model/firmware";
import { ensureGroup, groupExists } from "../model/groups";
import { getUpdate } from "../model/updates";
import { cancelUpdateRow } from "../services/updates";
import type { CampaignConfig } from "./config";
import { normalizeConfig } from "./config";
import type { CampaignEngine } from "./engine";
import { configOf, countStates, fleetView, getCampaign, logCampaignEvent, planCampaign, sampleSeed, targetSet, type CampaignRow } from "./model";
import { validateCampaign } from "./strategies";
import { validateWindows } from "./windows";
import { failures } from "./thresholds";
import { rollbackWarning } from "./triggers/rollback-check";

export function createCampaign(ctx: Ctx, body: Record<string, unknown>, who: Principal): CampaignRow {
  const cfg = normalizeConfig(body);
  if (cfg.scheduled_start !== null && Number.isNaN(Date.parse(cfg.scheduled_start))) throw badRequest("scheduled_start must be an ISO 8601 time", "INVALID_CAMPAIGN");
  if (cfg.scheduled_start) cfg.scheduled_start = new Date(Date.parse(cfg.scheduled_start)).toISOString();
  return ctx.db.transaction(() => {
    validateWindows(cfg.maintenance_windows);
    const problem = validateCampaign(cfg, fleetView(ctx.db));
    if (problem) throw badRequest(problem.message, problem.code, problem.details);
    if (!getFirmware(ctx.db, cfg.firmware_id)) throw notFound("firmware", cfg.firmware_id);
    const now = ctx.clock.now();
    if (body.create_missing !== true) refuseMissingTargets(ctx, cfg);
    // With create_missing, referenced devices and groups that do not exist yet get waiting
    // records (devices registered elsewhere later); a group can be filled before the start.
    for (const id of cfg.target_devices) ensureDevice(ctx.db, id, now);
    for (const g of cfg.target_groups) ensureGroup(ctx.db, g, now);
    const id = newId("camp");
    ctx.db
      .prepare(
        `INSERT INTO campaigns(campaign_id, name, description, firmware_id, deployment_strategy, priority, status, config,
           requires_approval, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'created', ?, ?, ?, ?, ?)`,
      )
      .run(id, cfg.name, cfg.description, cfg.firmware_id, cfg.deployment_strategy, cfg.priority, JSON.stringify(cfg), cfg.requires_approval ? 1 : 0, who.subject, now, now);
    logCampaignEvent(ctx.db, id, now, "created", { by: who.subject });
    const warning = cfg.auto_rollback ? rollbackWarning(ctx.db, targetSet(ctx.db, cfg), getFirmware(ctx.db, cfg.firmware_id)!.version) : null;
    if (warning) {
      logCampaignEvent(ctx.db, id, now, "warning", { ...warning });
      logEvent(ctx.log, "campaign_rollback_impossible", { campaign_id: id, versions: warning.missing_versions.join(","), devices: warning.devices.length }, "warn");
    }
    logEvent(ctx.log, "campaign_created", { campaign_id: id, firmware_id: cfg.firmware_id, strategy: cfg.deployment_strategy });
    return getCampaign(ctx.db, id)!;
  })();
}

/** Names every target device and group that does not exist, so a typo fails at creation, not at start. */
function refuseMissingTargets(ctx: Ctx, cfg: CampaignConfig): void {
  const devices = [...cfg.target_devices, ...[...cfg.blue_group, ...cfg.green_group].filter((e) => !groupExists(ctx.db, e))].filter((d) => !getDevice(ctx.db, d));
  const groups = cfg.target_groups.filter((g) => !groupExists(ctx.db, g));
  if (devices.length === 0 && groups.length === 0) return;
  const named = [devices.length ? `devices ${[...new Set(devices)].join(", ")}` : "", groups.length ? `groups ${groups.join(", ")}` : ""].filter(Boolean).join("; ");
  throw new ApiError(404, "TARGET_NOT_FOUND", `unknown ${named}: register them first, or pass "create_missing": true`, { devices: [...new Set(devices)], groups });
}

/** The campaign, row-locked on PostgreSQL: approve/start/pause/cancel/rollback on one replica wait for the engine's advance on another. */
function load(ctx: Ctx, id: string): CampaignRow {
  const c = ctx.db.prepare(`SELECT * FROM campaigns WHERE campaign_id = ?${forUpdate(ctx.db)}`).get(id) as CampaignRow | undefined;
  if (!c) throw notFound("campaign", id);
  return c;
}

export function approveCampaign(ctx: Ctx, id: string, comment: string | null, who: Principal): CampaignRow {
  return ctx.db.transaction(() => {
    const c = load(ctx, id);
    if (c.approved_at !== null) throw conflict("ALREADY_APPROVED", `campaign ${id} was approved already`);
    if (c.status !== "created") throw conflict("INVALID_STATE", `campaign ${id} is ${c.status}; only a created campaign can be approved`);
    // Four eyes (--distinct-approver): whoever created a campaign cannot approve it.
    if (ctx.config.distinctApprover && c.created_by === who.subject) throw new ApiError(403, "APPROVER_IS_CREATOR", `${who.subject} created campaign ${id} and cannot approve it`);
    const now = ctx.clock.now();
    ctx.db.prepare("UPDATE campaigns SET approved_at = ?, approval_comment = ?, approved_by = ?, updated_at = ? WHERE campaign_id = ?").run(now, comment, who.subject, now, id);
    logCampaignEvent(ctx.db, id, now, "approved", { by: who.subject, comment });
    logEvent(ctx.log, "campaign_approved", { campaign_id: id, by: who.subject });
    return load(ctx, id);
  })();
}

/** Starts a created campaign (snapshotting targets into stages) or resumes a paused one. */
export function startCampaign(ctx: Ctx, engine: CampaignEngine, id: string): CampaignRow {
  ctx.db.transaction(() => {
    const c = load(ctx, id);
    const cfg = configOf(c);
    const now = ctx.clock.now();
    const future = cfg.scheduled_start !== null && Date.parse(cfg.scheduled_start) > now;
    if (c.status === "paused") {
      // Resuming means the operator accepts the failures so far (only new ones count against the
      // threshold again) and, after a failed stage gate, that stage.
      const stageBump = c.pause_kind === "gate" ? 1 : 0;
      ctx.db
        .prepare(
          `UPDATE campaigns SET status = ?, pause_kind = NULL, pause_reason = NULL, current_stage = current_stage + ?, stage_ready_at = NULL, updated_at = ?,
             failed_seen = ? WHERE campaign_id = ?`,
        )
        .run(future ? "scheduled" : "in_progress", stageBump, now, failures(countStates(ctx.db, id)), id);
      logCampaignEvent(ctx.db, id, now, "resumed");
      logEvent(ctx.log, "campaign_resumed", { campaign_id: id });
      return;
    }
    if (c.status !== "created") throw conflict("INVALID_STATE", `campaign ${id} is ${c.status}; only created or paused campaigns can be started`);
    if (c.requires_approval && c.approved_at === null) throw conflict("APPROVAL_REQUIRED", `campaign ${id} requires approval before it can start`);
    snapshotPlan(ctx, c, cfg);
    ctx.db.prepare("UPDATE campaigns SET status = ?, started_at = ?, updated_at = ? WHERE campaign_id = ?").run(future ? "scheduled" : "in_progress", future ? null : now, now, id);
    logCampaignEvent(ctx.db, id, now, future ? "scheduled" : "started");
    logEvent(ctx.log, future ? "campaign_scheduled" : "campaign_started", { campaign_id: id, scheduled_start: cfg.scheduled_start ?? undefined });
  })();
  engine.tick();
  return load(ctx, id);
}

function snapshotPlan(ctx: Ctx, c: CampaignRow, cfg: CampaignConfig): void {
  const targets = targetSet(ctx.db, cfg);
  if (targets.length === 0) throw conflict("NO_TARGET_DEVICES", `campaign ${c.campaign_id} resolves to no devices (target_devices, target_groups, blue/green groups are empty and target_filter matches none)`);
  const now = ctx.clock.now();
  for (const id of targets) assertDeviceId(id);
  for (const id of targets) ensureDevice(ctx.db, id, now);
  const plan = planCampaign(ctx.db, c, cfg);
  const insStage = ctx.db.prepare("INSERT INTO campaign_stages(campaign_id, stage_index, name, soak_minutes) VALUES (?, ?, ?, ?)");
  const insDevice = ctx.db.prepare("INSERT INTO campaign_devices(campaign_id, device_id, stage_index, position, state) VALUES (?, ?, ?, ?, 'pending')");
  let position = 0;
  plan.forEach((stage, i) => {
    insStage.run(c.campaign_id, i, stage.name, stage.soakMinutes);
    for (const d of stage.deviceIds) insDevice.run(c.campaign_id, d, i, position++);
  });
}

export function pauseCampaign(ctx: Ctx, id: string, reason: string | null): CampaignRow {
  return ctx.db.transaction(() => {
    const c = load(ctx, id);
    if (c.status !== "in_progress" && c.status !== "scheduled") throw conflict("INVALID_STATE", `campaign ${id} is ${c.status}; only running or scheduled campaigns can be paused`);
    const now = ctx.clock.now();
    ctx.db.prepare("UPDATE campaigns SET status = 'paused', pause_kind = 'manual', pause_reason = ?, updated_at = ? WHERE campaign_id = ?").run(reason, now, id);
    logCampaignEvent(ctx.db, id, now, "paused", { reason });
    logEvent(ctx.log, "campaign_paused", { campaign_id: id, reason: reason ?? undefined });
    return load(ctx, id);
  })();
}

export function cancelCampaign(ctx: Ctx, id: string, reason: string | null): CampaignRow {
  return ctx.db.transaction(() => {
    const c = load(ctx, id);
    if (["completed", "failed", "cancelled"].includes(c.status)) throw conflict("INVALID_STATE", `campaign ${id} is already ${c.status}`);
    const now = ctx.clock.now();
    ctx.db.prepare("UPDATE campaigns SET status = 'cancelled', cancel_reason = ?, completed_at = ?, updated_at = ? WHERE campaign_id = ?").run(reason, now, now, id);
    ctx.db.prepare("UPDATE campaign_devices SET state = 'cancelled', finished_at = ? WHERE campaign_id = ? AND state = 'pending'").run(now, id);
    const inflight = ctx.db.prepare("SELECT update_id FROM campaign_devices WHERE campaign_id = ? AND state = 'in_progress'").all(id) as { update_id: string }[];
    for (const r of inflight) cancelUpdateRow(ctx, getUpdate(ctx.db, r.update_id)!, `campaign cancelled${reason ? ": " + reason : ""}`);
    logCampaignEvent(ctx.db, id, now, "cancelled", { reason, in_flight_cancelled: inflight.length });
    logEvent(ctx.log, "campaign_cancelled", { campaign_id: id, reason: reason ?? undefined });
    return load(ctx, id);
  })();
}

/** Manual rollback of devices that installed the campaign's firmware (all of them when target_devices is empty). */
export function rollbackCampaign(ctx: Ctx, engine: CampaignEngine, id: string, reason: string | null, targetDevices: string[]) {
  return ctx.db.transaction(() => {
    const c = load(ctx, id);
    if (c.status === "created") throw conflict("INVALID_STATE", `campaign ${id} has not started`);
    const members = new Set((ctx.db.prepare("SELECT device_id FROM campaign_devices WHERE campaign_id = ?").all(id) as { device_id: string }[]).map((r) => r.device_id));
    // A target that rollout_percentage left out was never updated: say so instead of refusing.
    const targeted = new Set(targetSet(ctx.db, configOf(c)));
    const neverUpdated = targetDevices.filter((d) => !members.has(d) && targeted.has(d));
    const unknown = targetDevices.filter((d) => !members.has(d) && !targeted.has(d));
    if (unknown.length) throw badRequest(`not in campaign ${id}: ${unknown.join(", ")}`, "DEVICE_NOT_IN_CAMPAIGN", { devices: unknown });
    const now = ctx.clock.now();
    if (c.status === "in_progress" || c.status === "scheduled") {
      // Stop spreading a firmware that is being rolled back.
      ctx.db.prepare("UPDATE campaigns SET status = 'paused', pause_kind = 'rollback', pause_reason = ?, updated_at = ? WHERE campaign_id = ?").run(`rollback: ${reason ?? ""}`, now, id);
    }
    const res = engine.rollbackCompleted(c, `manual: ${reason ?? ""}`, targetDevices.length ? targetDevices : undefined);
    const eligible = new Set([...res.rolled, ...res.skipped].map((r) => r.device_id));
    const notInstalled = (targetDevices.length ? targetDevices : []).filter((d) => !eligible.has(d) && members.has(d)).map((d) => {
      const row = ctx.db.prepare("SELECT state FROM campaign_devices WHERE campaign_id = ? AND device_id = ?").get(id, d) as { state: string };
      return { device_id: d, reason: `device is ${row.state}, not running the campaign firmware` };
    });
    for (const d of neverUpdated) notInstalled.push({ device_id: d, reason: "never updated: a target, but not among the devices the campaign started with (rollout_percentage)" });
    if (res.rolled.length === 0 && res.skipped.length === 0 && notInstalled.length === 0) {
      throw conflict("NOTHING_TO_ROLL_BACK", `no device of campaign ${id} has installed its firmware`);
    }
    return { campaign_id: id, status: load(ctx, id).status, rollback_updates: res.rolled, skipped: [...res.skipped, ...notInstalled] };
  })();
}

export function assertCampaignExists(ctx: Ctx, id: string): CampaignRow {
  return load(ctx, id);
}


/** Who the campaign targets and how its stages would cut them, as its start would (and, once running, who matches now). */
export function previewCampaign(ctx: Ctx, id: string) {
  const c = load(ctx, id);
  const cfg = configOf(c);
  const stages = planCampaign(ctx.db, c, cfg);
  const devices = stages.flatMap((s, stage) => s.deviceIds.map((device_id) => {
    const d = getDevice(ctx.db, device_id);
    return { device_id, stage, device_model: d?.device_model ?? null, hardware_version: d?.hardware_version ?? null, current_version: d?.current_version ?? null, groups: deviceGroups(ctx.db, device_id) };
  }));
  return {
    campaign_id: id, status: c.status, selection: cfg.selection, sample_seed: sampleSeed(cfg, id), total_devices: devices.length,
    stages: stages.map((s, index) => ({ index, name: s.name, total_devices: s.deviceIds.length, soak_minutes: s.soakMinutes })), devices,
  };
}
