// Drives running campaigns: dispatches devices stage by stage, applies the failure
// rules, soaks, finishes. Stateless between ticks (everything is in SQLite), so a
// restarted server simply continues. Time comes from ctx.clock only.
import type { Ctx } from "../context";
import { forUpdate, lockDevice } from "../db";
import { logEvent } from "../log";
import { ensureDevice } from "../model/devices";
import { getFirmware } from "../model/firmware";
import { activeUpdateFor, getUpdate } from "../model/updates";
import { checkCompatibility } from "../services/compatibility";
import { expireSilentUpdates, runAutoRetries } from "../services/retries";
import { rollbackCampaignDevice } from "../services/rollbacks";
import { assignUpdate } from "../services/updates";
import { DEFAULTS, type CampaignConfig } from "./config";
import { promotionVerdict, type PromotionGate } from "./gates";
import { configOf, countStates, countsToApi, getCampaign, logCampaignEvent, stagesOf, type CampaignRow, type StageRow } from "./model";
import { joinLateDevices, withdrawUnstarted } from "./live";
import { updatesAllowed } from "./windows";
import { campaignThresholdCrossed, failureRate, failures, finished, rolledBack, shouldAutoRollback, stageGatePasses } from "./thresholds";
import { evaluateTriggers, healthWindowOpen, type TriggerFiring } from "./triggers";
import { releaseDevices } from "./triggers/release-devices";

export class CampaignEngine {
  private ticking = false;
  private again = false;

  /** `gates`: rules asked before each promotion to the next stage (gates.ts); none = every stage passes. */
  constructor(private ctx: Ctx, private readonly gates: readonly PromotionGate[] = []) {}

  /** Runs one evaluation of everything time- or event-driven. Re-entrant calls are coalesced. */
  tick(): void {
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    try {
      do {
        this.again = false;
        expireSilentUpdates(this.ctx);
        runAutoRetries(this.ctx);
        const ids = this.ctx.db
          .prepare("SELECT campaign_id FROM campaigns WHERE status IN ('scheduled','in_progress') OR (rollback_reason IS NOT NULL AND status != 'cancelled') ORDER BY created_at")
          .all() as { campaign_id: string }[];
        for (const { campaign_id } of ids) {
          try {
            this.ctx.db.transaction(() => this.advance(campaign_id))();
          } catch (e) {
            this.ctx.log.error({ err: e, campaign_id }, `campaign_tick_failed campaign_id=${campaign_id}`);
          }
        }
      } while (this.again);
    } finally {
      this.ticking = false;
    }
  }

  private advance(id: string): void {
    const { db, clock } = this.ctx;
    const now = clock.now();
    // Locked first (campaign → device → update): API calls on other replicas wait for this advance.
    let c = db.prepare(`SELECT * FROM campaigns WHERE campaign_id = ?${forUpdate(db)}`).get(id) as CampaignRow;
    const cfg = configOf(c);
    if (c.rollback_reason) this.rollbackCompleted(c, c.rollback_reason); // devices that finished installing after the auto-rollback
    if (c.status === "scheduled") {
      if (cfg.scheduled_start && now < Date.parse(cfg.scheduled_start)) return;
      db.prepare("UPDATE campaigns SET status = 'in_progress', started_at = COALESCE(started_at, ?), updated_at = ? WHERE campaign_id = ?").run(now, now, id);
      logCampaignEvent(db, id, now, "started");
      logEvent(this.ctx.log, "campaign_started", { campaign_id: id });
    }
    if (getCampaign(db, id)!.status !== "in_progress") return;
    if (cfg.target_filter) joinLateDevices(this.ctx, c, cfg, now);
    if (!updatesAllowed(cfg.maintenance_windows, now)) withdrawUnstarted(this.ctx, c, now);

    const total = (db.prepare("SELECT COUNT(*) AS n FROM campaign_devices WHERE campaign_id = ?").get(id) as { n: number }).n;
    const firing = evaluateTriggers({ ctx: this.ctx, campaign: getCampaign(db, id)!, cfg, now, totalDevices: total });
    if (firing) return this.thresholdCrossed(c, cfg, "threshold", firing.reason, firing);

    const stages = stagesOf(db, id);
    for (let guard = 0; guard <= stages.length; guard++) {
      c = getCampaign(db, id)!;
      if (c.current_stage >= stages.length) {
        const all = countStates(db, id);
        if (all.pending === 0 && all.in_progress === 0 && !healthWindowOpen(db, id, cfg, now)) this.finish(c, cfg);
        return;
      }
      const stage = stages[c.current_stage]!;
      if (c.stage_ready_at !== null) {
        if (now < c.stage_ready_at) return; // soaking
        if (!this.promote(c, cfg, stage, now)) return;
        continue;
      }
      if (stage.started_at === null) {
        db.prepare("UPDATE campaign_stages SET started_at = ? WHERE campaign_id = ? AND stage_index = ?").run(now, id, stage.stage_index);
        stage.started_at = now;
        logCampaignEvent(db, id, now, "stage_started", { stage: stage.stage_index, name: stage.name });
        logEvent(this.ctx.log, "campaign_stage_started", { campaign_id: id, stage: stage.stage_index, stage_name: stage.name });
      }
      this.dispatch(c, cfg, stage);
      const sc = countStates(db, id, stage.stage_index);
      if (sc.pending > 0 || sc.in_progress > 0 || healthWindowOpen(db, id, cfg, now, stage.stage_index)) return;

      if (stage.finished_at === null) {
        db.prepare("UPDATE campaign_stages SET finished_at = ? WHERE campaign_id = ? AND stage_index = ?").run(now, id, stage.stage_index);
        stage.finished_at = now;
        logCampaignEvent(db, id, now, "stage_completed", { stage: stage.stage_index, name: stage.name, ...countsToApi(sc) });
      }
      if (!stageGatePasses(cfg, sc)) {
        const rate = failureRate(sc).toFixed(1);
        return this.thresholdCrossed(c, cfg, "gate", `stage ${stage.name} failure rate ${rate}% > ${cfg.failure_threshold_percent}%`);
      }
      const isLast = c.current_stage === stages.length - 1;
      if (stage.soak_minutes > 0 && !isLast) {
        db.prepare("UPDATE campaigns SET stage_ready_at = ?, updated_at = ? WHERE campaign_id = ?").run(now + stage.soak_minutes * 60_000, now, id);
        logCampaignEvent(db, id, now, "soak_started", { stage: stage.stage_index, minutes: stage.soak_minutes });
        return;
      }
      if (isLast) this.nextStage(c, now);
      else if (!this.promote(c, cfg, stage, now)) return;
    }
  }

  /** Asks the promotion gates; moves to the next stage when all pass. False when held or stopped. */
  private promote(c: CampaignRow, cfg: CampaignConfig, stage: StageRow, now: number): boolean {
    const v = promotionVerdict(this.gates, this.ctx, c, cfg, stage, now);
    if (v.verdict === "fail") {
      this.thresholdCrossed(c, cfg, "gate", `stage ${stage.name}: ${v.gate}: ${v.reason}`);
      return false;
    }
    if (v.verdict === "wait") return false;
    this.nextStage(c, now);
    return true;
  }

  private nextStage(c: CampaignRow, now: number): void {
    this.ctx.db.prepare("UPDATE campaigns SET current_stage = current_stage + 1, stage_ready_at = NULL, updated_at = ? WHERE campaign_id = ?").run(now, c.campaign_id);
  }

  /** Starts updates for pending devices of the stage, within max_concurrent_updates. */
  private dispatch(c: CampaignRow, cfg: CampaignConfig, stage: StageRow): void {
    const { db, clock } = this.ctx;
    const now = clock.now();
    if (!updatesAllowed(cfg.maintenance_windows, now)) return; // outside every maintenance window: hold
    let room = cfg.max_concurrent_updates ? cfg.max_concurrent_updates - countStates(db, c.campaign_id).in_progress : Infinity;
    if (room <= 0) return;
    const fw = getFirmware(db, c.firmware_id);
    if (!fw) return;
    const pending = db
      .prepare("SELECT device_id FROM campaign_devices WHERE campaign_id = ? AND stage_index = ? AND state = 'pending' ORDER BY position")
      .all(c.campaign_id, stage.stage_index) as { device_id: string }[];
    for (const { device_id } of pending) {
      if (room <= 0) break;
      const device = ensureDevice(db, device_id, now);
      lockDevice(db, device_id);
      const busy = activeUpdateFor(db, device_id);
      if (busy) {
        // Busy with another update: wait for it, but not longer than the campaign's timeout.
        if (now - (stage.started_at ?? now) < (cfg.timeout_minutes ?? DEFAULTS.timeout_minutes) * 60_000) continue;
        this.skip(c, device_id, `BUSY:${busy.update_id}`, now);
        continue;
      }
      const compat = checkCompatibility(fw, device);
      if (!compat.compatible) {
        this.skip(c, device_id, compat.reasons.map((r) => r.code).join(","), now);
        continue;
      }
      const u = assignUpdate(this.ctx, {
        deviceId: device_id, firmware: fw, priority: cfg.priority, campaignId: c.campaign_id,
        timeoutMinutes: cfg.timeout_minutes ?? DEFAULTS.timeout_minutes, pre: cfg.pre_update_commands, post: cfg.post_update_commands,
      });
      db.prepare("UPDATE campaign_devices SET state = 'in_progress', update_id = ? WHERE campaign_id = ? AND device_id = ?").run(u.update_id, c.campaign_id, device_id);
      room--;
    }
  }

  private skip(c: CampaignRow, deviceId: string, note: string, now: number): void {
    this.ctx.db.prepare("UPDATE campaign_devices SET state = 'skipped', note = ?, finished_at = ? WHERE campaign_id = ? AND device_id = ?").run(note, now, c.campaign_id, deviceId);
    logEvent(this.ctx.log, "campaign_device_skipped", { campaign_id: c.campaign_id, device_id: deviceId, reason: note });
  }

  /**
   * Failure rule hit: pause while devices remain to be updated, otherwise end as failed.
   * With auto_rollback, every device that installed the new firmware gets a signed rollback.
   */
  private thresholdCrossed(c: CampaignRow, cfg: CampaignConfig, kind: "threshold" | "gate", reason: string, firing?: TriggerFiring): void {
    const { db, clock } = this.ctx;
    const now = clock.now();
    const remaining = countStates(db, c.campaign_id).pending;
    const status = remaining > 0 ? "paused" : "failed";
    db.prepare("UPDATE campaigns SET status = ?, pause_kind = ?, pause_reason = ?, completed_at = ?, updated_at = ? WHERE campaign_id = ?").run(
      status, kind, reason, status === "failed" ? now : null, now, c.campaign_id,
    );
    logCampaignEvent(db, c.campaign_id, now, "threshold_crossed", { kind, reason, status, ...(firing ? { trigger: firing.trigger, rule: firing.rule, observed: firing.observed, sample: firing.sample } : {}) });
    logEvent(this.ctx.log, status === "paused" ? "campaign_paused" : "campaign_failed", { campaign_id: c.campaign_id, reason }, "warn");
    const codes = (db.prepare("SELECT DISTINCT u.error_code FROM campaign_devices cd JOIN updates u ON u.update_id = cd.update_id WHERE cd.campaign_id = ? AND cd.state = 'failed'").all(c.campaign_id) as { error_code: string | null }[]).map((r) => r.error_code ?? "");
    // A health, metric or timeout trigger that fired was asked for by name; the failure rate follows the codes seen.
    if (firing && firing.trigger !== "failure_rate" ? cfg.auto_rollback : shouldAutoRollback(cfg, codes)) {
      db.prepare("UPDATE campaigns SET rollback_reason = ? WHERE campaign_id = ?").run(`auto: ${reason}`, c.campaign_id);
      this.rollbackCompleted(c, `auto: ${reason}`);
    }
  }

  /** Sends a signed rollback to each device of the campaign that completed and has none yet. */
  rollbackCompleted(c: CampaignRow, reason: string, onlyDevices?: string[]): { rolled: Array<{ device_id: string; update_id: string }>; skipped: Array<{ device_id: string; reason: string }> } {
    const { db } = this.ctx;
    // Devices on the release (a health-failed device still runs it); an impossible rollback is recorded once per
    // device, and only an operator's rollback tries it again (the firmware may have been uploaded since).
    const rows = releaseDevices(db, c.campaign_id).filter((d) => d.state === "completed" || d.state === "failed")
      .filter((d) => !this.hasRollback(c.campaign_id, d.device_id, onlyDevices !== undefined || reason.startsWith("manual")));
    const out = { rolled: [] as Array<{ device_id: string; update_id: string }>, skipped: [] as Array<{ device_id: string; reason: string }> };
    for (const r of rows) {
      if (onlyDevices && !onlyDevices.includes(r.device_id)) continue;
      const original = getUpdate(db, r.update_id)!;
      const res = rollbackCampaignDevice(this.ctx, c.campaign_id, original, reason);
      if (typeof res === "string") {
        db.prepare("UPDATE campaign_devices SET note = ? WHERE campaign_id = ? AND device_id = ?").run(`rollback impossible: ${res}`, c.campaign_id, r.device_id);
        out.skipped.push({ device_id: r.device_id, reason: res });
      } else {
        out.rolled.push({ device_id: r.device_id, update_id: res.update_id });
      }
    }
    if (out.rolled.length || out.skipped.length) {
      logCampaignEvent(db, c.campaign_id, this.ctx.clock.now(), "rollback", { reason, rolled: out.rolled.length, impossible: out.skipped.length });
      logEvent(this.ctx.log, "campaign_rollback", { campaign_id: c.campaign_id, devices: out.rolled.length, impossible: out.skipped.length, reason });
    }
    return out;
  }

  private hasRollback(campaignId: string, deviceId: string, retryImpossible: boolean): boolean {
    const row = this.ctx.db.prepare("SELECT rollback_update_id, note FROM campaign_devices WHERE campaign_id = ? AND device_id = ?").get(campaignId, deviceId) as { rollback_update_id: string | null; note: string | null };
    return row.rollback_update_id !== null || (!retryImpossible && (row.note ?? "").startsWith("rollback impossible"));
  }

  private finish(c: CampaignRow, cfg: CampaignConfig): void {
    const { db, clock } = this.ctx;
    const now = clock.now();
    const counts = countStates(db, c.campaign_id);
    const status = failureRate(counts) > cfg.failure_threshold_percent ? "failed" : "completed";
    db.prepare("UPDATE campaigns SET status = ?, completed_at = ?, updated_at = ? WHERE campaign_id = ?").run(status, now, now, c.campaign_id);
    logCampaignEvent(db, c.campaign_id, now, status, countsToApi(counts));
    logEvent(this.ctx.log, `campaign_${status}`, { campaign_id: c.campaign_id, completed: counts.completed, failed: counts.failed, rolled_back: rolledBack(counts), skipped: counts.skipped });
  }
}
