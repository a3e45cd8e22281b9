import { DEFAULTS } from "../config";
import type { DeploymentStrategy } from "./strategy";
import { batches, rolloutSlice } from "./strategy";

/**
 * rollout_percentage of the targets, in batches of batch_size. The engine starts a
 * batch only after the previous one finished with its failure rate within the threshold.
 */
export const staged: DeploymentStrategy = {
  name: "staged",
  validate: () => null,
  plan: (c, targets) => batches(rolloutSlice(targets, c.rollout_percentage), c.batch_size ?? DEFAULTS.batch_size, "batch"),
};
