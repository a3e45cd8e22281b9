// One interface for all deployment strategies: a strategy validates its fields, names
// the devices it targets besides target_devices and target_groups, and splits the
// targets into stages. The engine runs the stages and knows no strategy by name.
import type { CampaignConfig, StrategyName } from "../config";

export interface StagePlan {
  name: string;
  deviceIds: string[];
  /** Minutes to wait after this stage finished (and passed the failure gate) before the next one starts. */
  soakMinutes: number;
}

/** What a strategy may look up about the fleet (read-only). */
export interface FleetView {
  /** Members of the group, or null when no group has that name. */
  groupMembers(name: string): string[] | null;
  deviceKnown(id: string): boolean;
}

/** Why a campaign config cannot run; becomes a 400 with this code. */
export interface CampaignProblem {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export interface DeploymentStrategy {
  name: StrategyName;
  validate(c: CampaignConfig, fleet: FleetView): CampaignProblem | null;
  /** Devices the strategy's own fields target, on top of target_devices and target_groups. */
  extraTargets?(c: CampaignConfig, fleet: FleetView): string[];
  plan(c: CampaignConfig, targets: string[], fleet: FleetView): StagePlan[];
}

export const invalidCampaign = (message: string): CampaignProblem => ({ code: "INVALID_CAMPAIGN", message });

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
