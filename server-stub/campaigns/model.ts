import { iso } from "../clock";
import type { Db } from "../db";
import { json } from "../db";
import { campaignEvent } from "../events/emit";
import type { CampaignEventKind } from "../events/types";
import { getDevice } from "../model/devices";
import { groupExists, groupMembers } from "../model/groups";
import type { CampaignConfig, CampaignStatus } from "./config";
import { normalizeConfig } from "./config";
import { strategyFor } from "./strategies";
import type { FleetView, StagePlan } from "./strategies/strategy";
import { filterMatches, spreadOrder, stratumOf } from "./targeting";
import { updatesAllowed } from "./windows";
import { emptyCounts, failureRate, rolledBack, type StateCounts } from "./thresholds";

export interface CampaignRow {
  campaign_id: string;
  name: string;
  description: string | null;
  firmware_id: string;
  deployment_strategy: string;
  priority: string;
  status: CampaignStatus;
  config: string;
  requires_approval: number;
  approved_at: number | null;
  approval_comment: string | null;
  approved_by: string | null;
  current_stage: number;
  stage_ready_at: number | null;
  pause_reason: string | null;
  pause_kind: "manual" | "threshold" | "gate" | "rollback" | null;
  cancel_reason: string | null;
  rollback_reason: string | null;
  failed_seen: number;
  created_by: string | null;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  updated_at: number;
}

export interface StageRow {
  campaign_id: string;
  stage_index: number;
  name: string;
  soak_minutes: number;
  started_at: number | null;
  finished_at: number | null;
}

export function getCampaign(db: Db, id: string): CampaignRow | undefined {
  return db.prepare("SELECT * FROM campaigns WHERE campaign_id = ?").get(id) as CampaignRow | undefined;
}

/** The stored config, with the defaults of fields added since it was stored. */
export function configOf(c: CampaignRow): CampaignConfig {
  return normalizeConfig(json.parse<Record<string, unknown>>(c.config, {}));
}

export function stagesOf(db: Db, id: string): StageRow[] {
  return db.prepare("SELECT * FROM campaign_stages WHERE campaign_id = ? ORDER BY stage_index").all(id) as StageRow[];
}

/**
 * The one definition of a campaign device's outcome, behind campaign totals, stage counts and
 * stats. It agrees with the status of the device's campaign update: a device whose update ended
 * rolled_back counts as rolled back, whether its self-test reverted it (state 'failed' for the
 * engine) or the server's rollback did (state 'rolled_back').
 */
const OUTCOME = `CASE WHEN cd.state = 'failed' AND u.status = 'rolled_back' THEN 'rolled_back_by_device'
  WHEN cd.state = 'rolled_back' THEN 'rolled_back_by_server' ELSE cd.state END`;

export function countStates(db: Db, id: string, stage?: number): StateCounts {
  const where = stage === undefined ? "cd.campaign_id = ?" : "cd.campaign_id = ? AND cd.stage_index = ?";
  const rows = db
    .prepare(`SELECT ${OUTCOME} AS outcome, COUNT(*) AS n FROM campaign_devices cd LEFT JOIN updates u ON u.update_id = cd.update_id WHERE ${where} GROUP BY outcome`)
    .all(...(stage === undefined ? [id] : [id, stage])) as { outcome: keyof StateCounts; n: number }[];
  const c = emptyCounts();
  for (const r of rows) c[r.outcome] = r.n;
  return c;
}

/** Counts as the API shows them, for a campaign and for each stage alike. */
export function countsToApi(c: StateCounts) {
  const { rolled_back_by_device, rolled_back_by_server, ...rest } = c;
  return { ...rest, rolled_back: rolledBack(c), rolled_back_by_device, rolled_back_by_server };
}

/** A campaign event (`campaign.<kind>` in the event stream); data carries the campaign's status after it. */
export function logCampaignEvent(db: Db, id: string, at: number, kind: CampaignEventKind, detail: Record<string, unknown> = {}): void {
  const status = (db.prepare("SELECT status FROM campaigns WHERE campaign_id = ?").get(id) as { status: string } | undefined)?.status ?? null;
  campaignEvent(db, id, at, kind, { ...detail, status });
}

/** Devices and groups as strategies see them. */
export function fleetView(db: Db): FleetView {
  return {
    groupMembers: (name) => (groupExists(db, name) ? groupMembers(db, name) : null),
    deviceKnown: (id) => getDevice(db, id) !== undefined,
  };
}

/** target_devices, members of target_groups, the strategy's own targets, then the filter's matches, de-duplicated in that order. */
export function targetSet(db: Db, cfg: CampaignConfig): string[] {
  const own = strategyFor(cfg.deployment_strategy).extraTargets?.(cfg, fleetView(db)) ?? [];
  const matched = cfg.target_filter ? filterMatches(db, cfg.target_filter) : [];
  return [...new Set([...cfg.target_devices, ...cfg.target_groups.flatMap((g) => groupMembers(db, g)), ...own, ...matched])];
}

export const sampleSeed = (cfg: CampaignConfig, campaignId: string) => cfg.sample_seed ?? campaignId;

/**
 * The targets in the order stages take them: a seeded spread sample, or the list order when asked for. Registered
 * devices come before waiting records (never seen yet), which could only stall a canary or an early batch.
 */
export function resolveTargets(db: Db, cfg: CampaignConfig, campaignId: string): string[] {
  const targets = targetSet(db, cfg);
  if (cfg.selection === "list_order") return targets;
  const spread = (ids: string[]) => spreadOrder(ids, sampleSeed(cfg, campaignId), (id) => stratumOf(db, id));
  const registered = (id: string) => getDevice(db, id)?.registered === 1;
  return [...spread(targets.filter(registered)), ...spread(targets.filter((id) => !registered(id)))];
}

/** What the campaign's start would snapshot: its targets cut into stages by its strategy. */
export function planCampaign(db: Db, c: CampaignRow, cfg: CampaignConfig): StagePlan[] {
  return strategyFor(cfg.deployment_strategy).plan(cfg, resolveTargets(db, cfg, c.campaign_id), fleetView(db));
}

export function campaignToApi(db: Db, c: CampaignRow, now: number) {
  const cfg = configOf(c);
  const started = c.status !== "created";
  const counts = countStates(db, c.campaign_id);
  const total = started ? Object.values(counts).reduce((a, b) => a + b, 0) : targetSet(db, cfg).length;
  const stages = stagesOf(db, c.campaign_id).map((s) => {
    const sc = countStates(db, c.campaign_id, s.stage_index);
    const size = Object.values(sc).reduce((a, b) => a + b, 0);
    const state =
      s.stage_index < c.current_stage ? "done"
        : s.stage_index > c.current_stage ? "pending"
          : c.stage_ready_at !== null && c.stage_ready_at > now ? "soaking"
            : s.finished_at !== null ? "done" : s.started_at !== null ? "active" : "pending";
    return {
      index: s.stage_index, name: s.name, state, total_devices: size, ...countsToApi(sc), soak_minutes: s.soak_minutes,
      soak_until: s.stage_index === c.current_stage ? iso(c.stage_ready_at) : null,
      started_at: iso(s.started_at), finished_at: iso(s.finished_at),
    };
  });
  return {
    campaign_id: c.campaign_id,
    ...cfg,
    status: c.status,
    total_devices: total,
    completed_devices: counts.completed,
    failed_devices: counts.failed,
    in_progress_devices: counts.in_progress,
    pending_devices: started ? counts.pending : total,
    skipped_devices: counts.skipped,
    cancelled_devices: counts.cancelled,
    rolled_back_devices: rolledBack(counts),
    rolled_back_by_device: counts.rolled_back_by_device,
    rolled_back_by_server: counts.rolled_back_by_server,
    in_maintenance_window: updatesAllowed(cfg.maintenance_windows, now),
    failure_rate_percent: Math.round(failureRate(counts) * 100) / 100,
    current_stage: c.current_stage,
    stages,
    approved: c.approved_at !== null,
    approved_at: iso(c.approved_at),
    approval_comment: c.approval_comment,
    pause_reason: c.pause_reason,
    cancel_reason: c.cancel_reason,
    rollback_reason: c.rollback_reason,
    // Found at creation (e.g. ROLLBACK_IMPOSSIBLE: auto_rollback without the previous firmware in the catalogue).
    warnings: (db.prepare("SELECT detail FROM campaign_events WHERE campaign_id = ? AND type = 'warning' ORDER BY id").all(c.campaign_id) as { detail: string }[]).map((r) => withoutStatus(json.parse(r.detail, {}))),
    created_at: iso(c.created_at),
    started_at: iso(c.started_at),
    completed_at: iso(c.completed_at),
  };
}

/** A warning as the API shows it: the event's detail without the campaign status every campaign event records. */
function withoutStatus(detail: Record<string, unknown>): Record<string, unknown> {
  const { status: _status, ...warning } = detail;
  return warning;
}
