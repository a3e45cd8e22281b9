// metric_threshold: per-metric rules over the devices' health reports. A device is out of range when its worst
// value in the window (the highest for a max rule, the lowest for a min rule) is outside the rule. The share of
// release devices out of range is compared with a baseline: campaign devices still on another version, over
// their reports since the campaign started (less one soak window). The rule fires when the release is worse by
// more than max_excess_percent points, once min_sample release devices have reported.
import type { Db } from "../../db";
import { getDevice } from "../../model/devices";
import { getFirmware } from "../../model/firmware";
import { healthReportsForUpdate, healthReportsOfVersion, type HealthRow } from "../../model/health-reports";
import { minSample } from "../thresholds";
import { healthConfigOf, soakMsOf, type MetricRule } from "./health-config";
import { releaseDevices } from "./release-devices";
import { percent, round1, type Trigger } from "./trigger";

const BUILT_IN = ["crash_reboots", "free_heap", "min_free_heap", "uptime_s"] as const;

export function metricValue(r: HealthRow, metric: string): number | null {
  if ((BUILT_IN as readonly string[]).includes(metric)) return r[metric as (typeof BUILT_IN)[number]];
  const v = r.metrics[metric];
  return typeof v === "number" ? v : null;
}

/** The device's worst value for the rule, or null when no report carries the metric. */
function worst(rule: MetricRule, reports: HealthRow[]): number | null {
  const values = reports.map((r) => metricValue(r, rule.metric)).filter((v): v is number => v !== null);
  if (values.length === 0) return null;
  const hi = Math.max(...values);
  const lo = Math.min(...values);
  if (rule.max !== undefined && hi > rule.max) return hi;
  if (rule.min !== undefined && lo < rule.min) return lo;
  return rule.max !== undefined ? hi : lo;
}

const outOfRange = (rule: MetricRule, v: number) => (rule.max !== undefined && v > rule.max) || (rule.min !== undefined && v < rule.min);

export function describeRule(rule: MetricRule): string {
  return [rule.min !== undefined ? `${rule.metric} >= ${rule.min}` : "", rule.max !== undefined ? `${rule.metric} <= ${rule.max}` : ""].filter(Boolean).join(" and ");
}

interface Side {
  sample: number;
  bad: number;
  worst: number | null;
}

function tally(rule: MetricRule, perDevice: HealthRow[][]): Side {
  const side: Side = { sample: 0, bad: 0, worst: null };
  for (const reports of perDevice) {
    const w = worst(rule, reports);
    if (w === null) continue;
    side.sample++;
    if (outOfRange(rule, w)) {
      side.bad++;
      side.worst = side.worst === null ? w : rule.max !== undefined && w > rule.max ? Math.max(side.worst, w) : Math.min(side.worst, w);
    }
  }
  return side;
}

function baselineReports(db: Db, campaignId: string, releaseVersion: string, from: number, to: number): HealthRow[][] {
  const rows = db.prepare("SELECT device_id FROM campaign_devices WHERE campaign_id = ?").all(campaignId) as { device_id: string }[];
  const out: HealthRow[][] = [];
  for (const { device_id } of rows) {
    const version = getDevice(db, device_id)?.current_version;
    if (!version || version === releaseVersion) continue;
    out.push(healthReportsOfVersion(db, device_id, version, from, to));
  }
  return out;
}

export const metricThresholdTrigger: Trigger = {
  name: "metric_threshold",
  evaluate({ ctx, campaign: c, cfg, now, totalDevices, since }) {
    const rules = healthConfigOf(cfg).metric_rules ?? [];
    if (rules.length === 0) return null;
    const { db } = ctx;
    const soak = soakMsOf(cfg);
    const release = releaseDevices(db, c.campaign_id)
      .filter((d) => d.completed_at > since)
      .map((d) => healthReportsForUpdate(db, d.update_id, Math.max(since, 0), Math.min(now, d.completed_at + soak)));
    const releaseVersion = getFirmware(db, c.firmware_id)?.version ?? "";
    const baseline = baselineReports(db, c.campaign_id, releaseVersion, Math.max(since, (c.started_at ?? now) - soak), now);
    for (const rule of rules) {
      const rel = tally(rule, release);
      const base = tally(rule, baseline);
      const need = rule.min_sample ?? minSample(cfg, totalDevices);
      const excess = percent(rel.bad, rel.sample) - percent(base.bad, base.sample);
      const allowed = rule.max_excess_percent ?? cfg.failure_threshold_percent;
      if (rel.sample < need || excess <= allowed) continue;
      return {
        trigger: "metric_threshold",
        rule: describeRule(rule),
        observed: {
          release_out_of_range: rel.bad, release_percent: round1(percent(rel.bad, rel.sample)), worst: rel.worst ?? "",
          baseline_out_of_range: base.bad, baseline_sample: base.sample, baseline_percent: round1(percent(base.bad, base.sample)),
        },
        sample: rel.sample,
        reason: `metric ${describeRule(rule)}: ${rel.bad} of ${rel.sample} devices on the release out of range (${round1(percent(rel.bad, rel.sample))}%) vs ${base.bad} of ${base.sample} on the previous version; excess ${round1(excess)} > ${allowed} points`,
      };
    }
    return null;
  },
};
