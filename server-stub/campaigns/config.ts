// Campaign configuration: every field of the HOWTO's campaign example and strategy sections.
import { healthCheckConfigSchema } from "./triggers/health-config";
import { maintenanceWindowsSchema, type MaintenanceWindow } from "./windows";
import { targetFilterSchema, type TargetFilter } from "./targeting";
import { commandListSchema, DEVICE_ID_MAX, FIRMWARE_ID_MAX, TIMESTAMP_MAX, UPDATE_PRIORITIES, type UpdatePriority } from "../../device/protocol";

export const STRATEGY_NAMES = ["immediate", "scheduled", "staged", "canary", "blue_green"] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export const CAMPAIGN_STATUSES = ["created", "scheduled", "in_progress", "paused", "completed", "failed", "cancelled"] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];

/** spread: a seeded sample spread over groups and hardware versions; list_order: the targets as listed. */
export const SELECTIONS = ["spread", "list_order"] as const;
export type Selection = (typeof SELECTIONS)[number];

export const ROLLBACK_TRIGGERS = ["failure_rate", "health_check", "timeout", "metric_threshold"] as const;

export interface CampaignConfig {
  name: string;
  description: string | null;
  firmware_id: string;
  deployment_strategy: StrategyName;
  priority: UpdatePriority;
  target_devices: string[];
  target_groups: string[];
  /** Devices matching it are targets too, evaluated live: a device registered after the start joins. */
  target_filter: TargetFilter | null;
  selection: Selection;
  /** Seed of the spread sample; the campaign id when null (so the preview and the start agree). */
  sample_seed: string | null;
  /** Updates are offered only inside these (none = any time). */
  maintenance_windows: MaintenanceWindow[];
  rollout_percentage: number;
  max_concurrent_updates: number | null;
  batch_size: number | null;
  auto_rollback: boolean;
  failure_threshold_percent: number;
  /** Finished devices needed before the campaign-wide failure rate can pause it. */
  failure_min_sample: number | null;
  scheduled_start: string | null;
  timeout_minutes: number | null;
  requires_approval: boolean;
  canary_percentage: number | null;
  canary_duration_minutes: number | null;
  blue_group: string[];
  green_group: string[];
  rollback_triggers: string[];
  health_check_config: Record<string, unknown> | null;
  pre_update_commands: string[];
  post_update_commands: string[];
}

export const DEFAULTS = {
  rollout_percentage: 100,
  failure_threshold_percent: 10,
  batch_size: 50,
  canary_percentage: 5,
  canary_duration_minutes: 60,
  timeout_minutes: 120,
  min_sample_cap: 10,
};

const idList = { type: "array", maxItems: 10000, items: { type: "string", minLength: 1, maxLength: DEVICE_ID_MAX } };
const nint = (min: number, max: number) => ({ type: ["integer", "null"], minimum: min, maximum: max });

export const campaignBodySchema = {
  type: "object",
  additionalProperties: false,
  required: ["name", "firmware_id"],
  properties: {
    name: { type: "string", minLength: 1, maxLength: 200 },
    description: { type: ["string", "null"], maxLength: 4000 },
    firmware_id: { type: "string", minLength: 1, maxLength: FIRMWARE_ID_MAX },
    deployment_strategy: { type: "string", enum: [...STRATEGY_NAMES], default: "immediate" },
    priority: { type: "string", enum: [...UPDATE_PRIORITIES], default: "normal" },
    target_devices: { ...idList, default: [] },
    target_groups: { ...idList, default: [] },
    target_filter: targetFilterSchema,
    selection: { type: "string", enum: [...SELECTIONS], default: "spread" },
    sample_seed: { type: ["string", "null"], minLength: 1, maxLength: 128 },
    maintenance_windows: maintenanceWindowsSchema,
    // Not stored: whether unknown target devices and groups get waiting records instead of a 404.
    create_missing: { type: "boolean", default: false },
    rollout_percentage: { type: "number", exclusiveMinimum: 0, maximum: 100, default: DEFAULTS.rollout_percentage },
    max_concurrent_updates: nint(1, 100000),
    batch_size: nint(1, 100000),
    auto_rollback: { type: "boolean", default: false },
    failure_threshold_percent: { type: "number", minimum: 0, maximum: 100, default: DEFAULTS.failure_threshold_percent },
    failure_min_sample: nint(1, 100000),
    scheduled_start: { type: ["string", "null"], maxLength: TIMESTAMP_MAX },
    timeout_minutes: nint(1, 525600),
    requires_approval: { type: "boolean", default: false },
    canary_percentage: { type: ["number", "null"], exclusiveMinimum: 0, maximum: 100 },
    canary_duration_minutes: nint(0, 525600),
    blue_group: { ...idList, default: [] },
    green_group: { ...idList, default: [] },
    rollback_triggers: { type: "array", maxItems: 4, items: { type: "string", enum: [...ROLLBACK_TRIGGERS] }, default: [] },
    health_check_config: healthCheckConfigSchema,
    pre_update_commands: { ...commandListSchema, default: [] },
    post_update_commands: { ...commandListSchema, default: [] },
  },
};

export function normalizeConfig(body: Record<string, unknown>): CampaignConfig {
  const b = body as Partial<CampaignConfig>;
  return {
    name: b.name!,
    description: b.description ?? null,
    firmware_id: b.firmware_id!,
    deployment_strategy: b.deployment_strategy ?? "immediate",
    priority: b.priority ?? "normal",
    target_devices: b.target_devices ?? [],
    target_groups: b.target_groups ?? [],
    target_filter: b.target_filter ?? null,
    selection: b.selection ?? "spread",
    sample_seed: b.sample_seed ?? null,
    maintenance_windows: b.maintenance_windows ?? [],
    rollout_percentage: b.rollout_percentage ?? DEFAULTS.rollout_percentage,
    max_concurrent_updates: b.max_concurrent_updates ?? null,
    batch_size: b.batch_size ?? null,
    auto_rollback: b.auto_rollback ?? false,
    failure_threshold_percent: b.failure_threshold_percent ?? DEFAULTS.failure_threshold_percent,
    failure_min_sample: b.failure_min_sample ?? null,
    scheduled_start: b.scheduled_start ?? null,
    timeout_minutes: b.timeout_minutes ?? null,
    requires_approval: b.requires_approval ?? false,
    canary_percentage: b.canary_percentage ?? null,
    canary_duration_minutes: b.canary_duration_minutes ?? null,
    blue_group: b.blue_group ?? [],
    green_group: b.green_group ?? [],
    rollback_triggers: b.rollback_triggers ?? [],
    health_check_config: b.health_check_config ?? null,
    pre_update_commands: b.pre_update_commands ?? [],
    post_update_commands: b.post_update_commands ?? [],
  };
}
