import type { StrategyName } from "../config";
import { blueGreen } from "./blue-green";
import { canary } from "./canary";
import { immediate } from "./immediate";
import { scheduled } from "./scheduled";
import { staged } from "./staged";
import type { DeploymentStrategy } from "./strategy";

export const STRATEGIES: Record<StrategyName, DeploymentStrategy> = {
  immediate,
  scheduled,
  staged,
  canary,
  blue_green: blueGreen,
};
