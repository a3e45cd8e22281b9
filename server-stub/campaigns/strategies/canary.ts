import { DEFAULTS } from "../config";
import type { DeploymentStrategy } from "./strategy";
import { batches, rolloutSlice } from "./strategy";

/** canary_percentage first, then a soak of canary_duration_minutes, then the rest in batches. */
export const canary: DeploymentStrategy = {
  name: "canary",
  validate: () => null,
  plan: (c, targets) => {
    const selected = rolloutSlice(targets, c.rollout_percentage);
    const pct = c.canary_percentage ?? DEFAULTS.canary_percentage;
    const n = Math.min(selected.length, Math.max(1, Math.ceil((selected.length * pct) / 100)));
    const rest = selected.slice(n);
    const stages = [{ name: "canary", deviceIds: selected.slice(0, n), soakMinutes: c.canary_duration_minutes ?? DEFAULTS.canary_duration_minutes }];
    return rest.length ? [...stages, ...batches(rest, c.batch_size ?? rest.length, "rollout")] : stages;
  },
};
