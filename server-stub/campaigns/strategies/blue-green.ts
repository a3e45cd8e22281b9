import type { DeploymentStrategy } from "./strategy";

/**
 * blue_group first; green_group (plus any other targets) only after blue succeeded.
 * The engine resolves group names in blue_group/green_group to their members before planning.
 */
export const blueGreen: DeploymentStrategy = {
  name: "blue_green",
  validate: (c) => (c.blue_group.length && c.green_group.length ? null : "deployment_strategy blue_green requires non-empty blue_group and green_group"),
  plan: (c, targets) => {
    const blue = new Set(c.blue_group);
    const blueIds = targets.filter((id) => blue.has(id));
    const greenIds = targets.filter((id) => !blue.has(id));
    return [
      { name: "blue", deviceIds: blueIds, soakMinutes: 0 },
      { name: "green", deviceIds: greenIds, soakMinutes: 0 },
    ];
  },
};
