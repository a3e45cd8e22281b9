// health_check_config: the seed's fields (endpoint, expected_status, timeout) describe an HTTP probe the server
// cannot make to devices behind NAT; they are accepted and stored. What the server judges comes from the
// devices' own health reports (device/protocol/health.ts), with the fields below.
import { HEALTH_ENTRIES_MAX, HEALTH_NAME_MAX, HEALTH_NAME_PATTERN } from "../../../device/protocol";

export interface MetricRule {
  /** crash_reboots, free_heap, min_free_heap, uptime_s, or an application metric's name. */
  metric: string;
  /** A device is out of range when its worst value in the window is below min or above max. */
  min?: number;
  max?: number;
  /** How many percentage points more devices on the release may be out of range than on the previous version. Default: failure_threshold_percent. */
  max_excess_percent?: number;
  /** Devices on the release with a report in their window before the rule may act. Default: the campaign's minimum sample. */
  min_sample?: number;
}

export interface HealthCheckConfig {
  endpoint?: string;
  expected_status?: number;
  timeout?: number;
  /** How long after completing a device's health is judged (the next stage waits for it). Default 60. */
  soak_minutes?: number;
  /** Crash or watchdog reboots allowed after the update. Default 0. */
  max_crash_reboots?: number;
  /** Free heap (and its low-water mark) below this fails the device. */
  min_free_heap?: number;
  /** A device in its window that sends no report for this long fails ("stopped reporting"). */
  max_silence_minutes?: number;
  metric_rules?: MetricRule[];
}

export const DEFAULT_SOAK_MINUTES = 60;

export const healthCheckConfigSchema = {
  type: ["object", "null"],
  additionalProperties: false,
  properties: {
    endpoint: { type: "string", maxLength: 200 },
    expected_status: { type: "integer", minimum: 100, maximum: 599 },
    timeout: { type: "integer", minimum: 0, maximum: 86400 },
    soak_minutes: { type: "number", minimum: 0, maximum: 525600 }, // fractions: a demo soaks for seconds
    max_crash_reboots: { type: "integer", minimum: 0, maximum: 1000 },
    min_free_heap: { type: "integer", minimum: 0 },
    max_silence_minutes: { type: "integer", minimum: 1, maximum: 525600 },
    metric_rules: {
      type: "array",
      maxItems: HEALTH_ENTRIES_MAX,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["metric"],
        anyOf: [{ required: ["min"] }, { required: ["max"] }],
        properties: {
          metric: { type: "string", minLength: 1, maxLength: HEALTH_NAME_MAX, pattern: HEALTH_NAME_PATTERN },
          min: { type: "number" },
          max: { type: "number" },
          max_excess_percent: { type: "number", minimum: 0, maximum: 100 },
          min_sample: { type: "integer", minimum: 1, maximum: 100000 },
        },
      },
    },
  },
};

export function healthConfigOf(cfg: { health_check_config: Record<string, unknown> | null }): HealthCheckConfig {
  return (cfg.health_check_config ?? {}) as HealthCheckConfig;
}

export function soakMsOf(cfg: { health_check_config: Record<string, unknown> | null }): number {
  return (healthConfigOf(cfg).soak_minutes ?? DEFAULT_SOAK_MINUTES) * 60_000;
}
