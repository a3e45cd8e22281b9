import type { DeploymentStrategy } from "./strategy";
import { rolloutSlice } from "./strategy";

/** All devices at once (max_concurrent_updates still caps how many are in flight). */
export const immediate: DeploymentStrategy = {
  name: "immediate",
  validate: () => null,
  plan: (c, targets) => [{ name: "all", deviceIds: rolloutSlice(targets, c.rollout_percentage), soakMinutes: 0 }],
};
