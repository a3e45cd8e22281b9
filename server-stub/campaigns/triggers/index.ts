// The triggers a campaign evaluates, in order: the specific ones first, so the event names the real cause
// (a health failure also counts in the failure rate). failure_rate always runs: it is the campaign's failure
// threshold; the others run when rollback_triggers lists them.
import type { Db } from "../../db";
import type { CampaignConfig } from "../config";
import { failureRateTrigger } from "./failure-rate";
import { healthCheckTrigger } from "./health-check";
import { soakMsOf } from "./health-config";
import { metricThresholdTrigger } from "./metric-threshold";
import { releaseDevices } from "./release-devices";
import { timeoutTrigger } from "./timeout";
import type { Trigger, TriggerFiring, TriggerInput } from "./trigger";

export type { TriggerFiring } from "./trigger";

const ORDER: readonly Trigger[] = [timeoutTrigger, healthCheckTrigger, metricThresholdTrigger, failureRateTrigger];

export function enabledTriggers(cfg: CampaignConfig): Trigger[] {
  return ORDER.filter((t) => t.name === "failure_rate" || cfg.rollback_triggers.includes(t.name));
}

/** The first trigger that fires, or null. */
export function evaluateTriggers(input: Omit<TriggerInput, "since">): TriggerFiring | null {
  const since = resumedAt(input.ctx.db, input.campaign.campaign_id);
  for (const t of enabledTriggers(input.cfg)) {
    const firing = t.evaluate({ ...input, since });
    if (firing) return firing;
  }
  return null;
}

/** Whether health is still being judged: a device on the release (of that stage) is inside its soak window.
 * A campaign does not complete, and a stage does not hand over to the next, before that window closes. */
export function healthWindowOpen(db: Db, campaignId: string, cfg: CampaignConfig, now: number, stage?: number): boolean {
  if (!cfg.rollback_triggers.some((t) => t === "health_check" || t === "metric_threshold")) return false;
  const soak = soakMsOf(cfg);
  return releaseDevices(db, campaignId).some((d) => d.state === "completed" && (stage === undefined || d.stage_index === stage) && d.completed_at + soak > now);
}

function resumedAt(db: Db, campaignId: string): number {
  const row = db.prepare("SELECT MAX(at) AS at FROM campaign_events WHERE campaign_id = ? AND type = 'resumed'").get(campaignId) as { at: number | null };
  return row.at ?? 0;
}
