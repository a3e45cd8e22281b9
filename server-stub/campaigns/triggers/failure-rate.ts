// failure_rate: the share of finished devices that failed, campaign-wide, once a minimum sample finished.
// Checked when a new failure arrives (failed_seen), so a resume that accepted the failures so far holds.
import { countStates } from "../model";
import { campaignThresholdCrossed, failureRate, failures, finished } from "../thresholds";
import type { Trigger } from "./trigger";

export const failureRateTrigger: Trigger = {
  name: "failure_rate",
  evaluate({ ctx, campaign: c, cfg, totalDevices }) {
    const counts = countStates(ctx.db, c.campaign_id);
    const seen = failures(counts);
    if (seen === c.failed_seen) return null;
    ctx.db.prepare("UPDATE campaigns SET failed_seen = ? WHERE campaign_id = ?").run(seen, c.campaign_id);
    if (seen < c.failed_seen || !campaignThresholdCrossed(cfg, counts, totalDevices)) return null;
    const rate = failureRate(counts).toFixed(1);
    return {
      trigger: "failure_rate",
      rule: `failure rate > ${cfg.failure_threshold_percent}%`,
      observed: { failure_rate_percent: Number(rate), failed: seen },
      sample: finished(counts),
      reason: `failure rate ${rate}% > ${cfg.failure_threshold_percent}% over ${finished(counts)} finished devices`,
    };
  },
};
