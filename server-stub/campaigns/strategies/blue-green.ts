import type { CampaignConfig } from "../config";
import type { DeploymentStrategy, FleetView } from "./strategy";
import { invalidCampaign } from "./strategy";

/** A blue_group/green_group entry names a group (meaning its members) or a known device. */
function expand(entries: string[], fleet: FleetView): string[] {
  return entries.flatMap((e) => fleet.groupMembers(e) ?? [e]);
}

function unknownEntries(c: CampaignConfig, fleet: FleetView): string[] {
  return [...new Set([...c.blue_group, ...c.green_group])].filter((e) => fleet.groupMembers(e) === null && !fleet.deviceKnown(e));
}

/** blue_group first; green_group (plus any other targets) only after blue succeeded. */
export const blueGreen: DeploymentStrategy = {
  name: "blue_green",
  validate: (c, fleet) => {
    if (!c.blue_group.length || !c.green_group.length) return invalidCampaign("deployment_strategy blue_green requires non-empty blue_group and green_group");
    const missing = unknownEntries(c, fleet);
    if (!missing.length) return null;
    return { code: "UNKNOWN_GROUP", message: `blue_group/green_group: no group or device named ${missing.join(", ")}`, details: { groups: missing } };
  },
  extraTargets: (c, fleet) => [...expand(c.blue_group, fleet), ...expand(c.green_group, fleet)],
  plan: (c, targets, fleet) => {
    const blue = new Set(expand(c.blue_group, fleet));
    return [
      { name: "blue", deviceIds: targets.filter((id) => blue.has(id)), soakMinutes: 0 },
      { name: "green", deviceIds: targets.filter((id) => !blue.has(id)), soakMinutes: 0 },
    ];
  },
};
