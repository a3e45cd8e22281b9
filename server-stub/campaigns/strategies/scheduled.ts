import type { DeploymentStrategy } from "./strategy";
import { rolloutSlice } from "./strategy";

/** Like immediate, but nothing happens before scheduled_start (the engine holds the campaign in "scheduled"). */
export const scheduled: DeploymentStrategy = {
  name: "scheduled",
  validate: (c) => (c.scheduled_start ? null : "deployment_strategy scheduled requires scheduled_start"),
  plan: (c, targets) => [{ name: "all", deviceIds: rolloutSlice(targets, c.rollout_percentage), soakMinutes: 0 }],
};
