// Failure-rate rules. The rate is failures / finished, where finished excludes skipped
// and cancelled devices; a campaign-wide check waits for a minimum sample so one early
// failure in a large campaign does not stop it. A rate "crosses" the threshold when it
// is strictly greater (10 % with threshold 10 is still fine; threshold 0 = any failure).
import { DEFAULTS, type CampaignConfig } from "./config";

/** Devices of a campaign (or stage) by outcome; see countStates for the one definition. */
export interface StateCounts {
  pending: number;
  in_progress: number;
  completed: number;
  failed: number;
  skipped: number;
  cancelled: number;
  /** The device's self-test failed and it went back to its old firmware on its own: a firmware failure. */
  rolled_back_by_device: number;
  /** The device installed the firmware fine; the server's rollback then took it back. */
  rolled_back_by_server: number;
}

export function emptyCounts(): StateCounts {
  return { pending: 0, in_progress: 0, completed: 0, failed: 0, skipped: 0, cancelled: 0, rolled_back_by_device: 0, rolled_back_by_server: 0 };
}

export function rolledBack(c: StateCounts): number {
  return c.rolled_back_by_device + c.rolled_back_by_server;
}

/** Devices that reached an outcome that says something about the firmware. */
export function finished(c: StateCounts): number {
  return c.completed + c.failed + rolledBack(c);
}

/** Outcomes that count against the firmware: failed installs and self-test rollbacks. */
export function failures(c: StateCounts): number {
  return c.failed + c.rolled_back_by_device;
}

export function failureRate(c: StateCounts): number {
  const f = finished(c);
  return f === 0 ? 0 : (failures(c) / f) * 100;
}

export function minSample(cfg: CampaignConfig, totalDevices: number): number {
  return Math.max(1, cfg.failure_min_sample ?? Math.min(DEFAULTS.min_sample_cap, totalDevices));
}

/** Campaign-wide rule, evaluated whenever a new failure arrives. */
export function campaignThresholdCrossed(cfg: CampaignConfig, c: StateCounts, totalDevices: number): boolean {
  return finished(c) >= minSample(cfg, totalDevices) && failureRate(c) > cfg.failure_threshold_percent;
}

/** Stage gate: a finished stage lets the next one start only if its own rate is within the threshold. */
export function stageGatePasses(cfg: CampaignConfig, stage: StateCounts): boolean {
  return failureRate(stage) <= cfg.failure_threshold_percent;
}

/**
 * Whether crossing the threshold triggers the automatic rollback: auto_rollback must be on,
 * and rollback_triggers (empty = ["failure_rate"]) must cover the failures seen.
 * "health_check" covers SELF_TEST_FAILED, "timeout" covers TIMEOUT; "metric_threshold" is
 * accepted and stored but the server has no metrics to evaluate it.
 */
export function shouldAutoRollback(cfg: CampaignConfig, failureCodes: string[]): boolean {
  if (!cfg.auto_rollback) return false;
  const triggers = cfg.rollback_triggers.length ? cfg.rollback_triggers : ["failure_rate"];
  if (triggers.includes("failure_rate")) return true;
  if (triggers.includes("timeout") && failureCodes.includes("TIMEOUT")) return true;
  if (triggers.includes("health_check") && failureCodes.includes("SELF_TEST_FAILED")) return true;
  return false;
}
