import type { CampaignConfig, StrategyName } from "../config";
import { blueGreen } from "./blue-green";
import { canary } from "./canary";
import { immediate } from "./immediate";
import { staged } from "./staged";
import type { CampaignProblem, DeploymentStrategy, FleetView } from "./strategy";
import { invalidCampaign } from "./strategy";

const STRATEGIES = { immediate, staged, canary, blue_green: blueGreen } satisfies Record<Exclude<StrategyName, "scheduled">, DeploymentStrategy>;

/**
 * Timing is not a strategy: any campaign may carry a scheduled_start, and the engine holds it
 * until then. "scheduled" is the HOWTO's name for immediate with a required scheduled_start.
 */
export function strategyFor(name: StrategyName): DeploymentStrategy {
  return name === "scheduled" ? immediate : STRATEGIES[name];
}

export function validateCampaign(c: CampaignConfig, fleet: FleetView): CampaignProblem | null {
  if (c.deployment_strategy === "scheduled" && !c.scheduled_start) return invalidCampaign("deployment_strategy scheduled requires scheduled_start");
  return strategyFor(c.deployment_strategy).validate(c, fleet);
}
