// One interface for the automatic-rollback triggers of the seed HOWTO. The engine evaluates each enabled trigger
// on every tick of a running campaign; the first that fires pauses the campaign (and, with auto_rollback, rolls
// back the devices that took the release). Triggers judge evidence newer than the last resume: resuming means
// the operator accepted what was seen so far.
import type { Ctx } from "../../context";
import type { CampaignConfig } from "../config";
import type { CampaignRow } from "../model";

export type TriggerName = "failure_rate" | "health_check" | "timeout" | "metric_threshold";

export interface TriggerInput {
  ctx: Ctx;
  campaign: CampaignRow;
  cfg: CampaignConfig;
  now: number;
  /** Devices in the campaign (for the default minimum sample). */
  totalDevices: number;
  /** Evidence before this time was accepted by a resume (0 when never resumed). */
  since: number;
}

export interface TriggerFiring {
  trigger: TriggerName;
  /** The rule that fired, as configured ("failure rate > 10%", "crash_reboots max 0"). */
  rule: string;
  /** The values seen (rates, counts, worst values). */
  observed: Record<string, number | string>;
  /** Devices the decision was based on. */
  sample: number;
  /** One line for pause_reason and the log. */
  reason: string;
}

export interface Trigger {
  name: TriggerName;
  /** Judges devices (a trigger may mark some failed) and says whether the campaign must stop. */
  evaluate(input: TriggerInput): TriggerFiring | null;
}

export const percent = (part: number, whole: number) => (whole === 0 ? 0 : (part / whole) * 100);
export const round1 = (x: number) => Math.round(x * 10) / 10;
