// One interface for all deployment strategies: a strategy only validates its
// fields and splits the target list into stages; the engine runs the stages.
import type { CampaignConfig, StrategyName } from "../config";

export interface StagePlan {
  name: string;
  deviceIds: string[];
  /** Minutes to wait after this stage finished (and passed the failure gate) before the next one starts. */
  soakMinutes: number;
}

export interface DeploymentStrategy {
  name: StrategyName;
  /** Returns an error message for a config this strategy cannot run. */
  validate(c: CampaignConfig): string | null;
  plan(c: CampaignConfig, targets: string[]): StagePlan[];
}

/** The first rollout_percentage of the targets (at least one device). */
export function rolloutSlice(targets: string[], percentage: number): string[] {
  if (targets.length === 0) return [];
  return targets.slice(0, Math.max(1, Math.ceil((targets.length * percentage) / 100)));
}

export function batches(ids: string[], size: number, prefix: string): StagePlan[] {
  const out: StagePlan[] = [];
  for (let i = 0; i < ids.length; i += size) out.push({ name: `${prefix} ${out.length + 1}`, deviceIds: ids.slice(i, i + size), soakMinutes: 0 });
  return out;
}
