// health_check: a device on the release whose health reports, within its soak window after completing, show
// crash reboots, a failed application check, too little free heap, or that stop coming, counts as failed for
// the campaign. The trigger fires when such failures exceed failure_threshold_percent of the devices judged
// (at least the campaign's minimum sample).
import type { Db } from "../../db";
import { healthReportsForUpdate, type HealthRow } from "../../model/health-reports";
import { logCampaignEvent } from "../model";
import { minSample } from "../thresholds";
import { healthConfigOf, soakMsOf, type HealthCheckConfig } from "./health-config";
import { releaseDevices } from "./release-devices";
import { percent, round1, type Trigger } from "./trigger";

const HEALTH_NOTE = "health: ";

/** Why these reports fail the device, or null while it looks healthy. */
export function healthProblem(hc: HealthCheckConfig, reports: HealthRow[]): string | null {
  const maxCrashes = hc.max_crash_reboots ?? 0;
  for (const r of reports) {
    if (r.crash_reboots > maxCrashes) return `${r.crash_reboots} crash reboots (last reset ${r.reset_reason}) > ${maxCrashes}`;
    const failed = Object.entries(r.checks).filter(([name, ok]) => !ok && (!hc.endpoint || hc.endpoint === name)).map(([name]) => name);
    if (failed.length) return `check ${failed.join(", ")} failed`;
    const heap = Math.min(r.free_heap ?? Infinity, r.min_free_heap ?? Infinity);
    if (hc.min_free_heap !== undefined && heap < hc.min_free_heap) return `free heap ${heap} < ${hc.min_free_heap}`;
  }
  return null;
}

function markFailed(db: Db, campaignId: string, deviceId: string, why: string, now: number) {
  db.prepare("UPDATE campaign_devices SET state = 'failed', note = ?, finished_at = ? WHERE campaign_id = ? AND device_id = ?").run(HEALTH_NOTE + why, now, campaignId, deviceId);
  logCampaignEvent(db, campaignId, now, "health_failed", { device_id: deviceId, reason: why });
}

export const healthCheckTrigger: Trigger = {
  name: "health_check",
  evaluate({ ctx, campaign: c, cfg, now, totalDevices, since }) {
    const { db } = ctx;
    const hc = healthConfigOf(cfg);
    const soak = soakMsOf(cfg);
    let judged = 0;
    let failed = 0;
    const reasons: string[] = [];
    for (const d of releaseDevices(db, c.campaign_id)) {
      if (d.state === "failed") {
        // Failed by an earlier tick; counts when it happened after the last resume.
        if (d.finished_at !== null && d.finished_at > since) (judged++, failed++);
        continue;
      }
      if (d.completed_at <= since) continue;
      const end = d.completed_at + soak;
      const reports = healthReportsForUpdate(db, d.update_id, 0, Math.min(now, end));
      let why = healthProblem(hc, reports);
      const last = reports.length ? reports[reports.length - 1]!.received_at : d.completed_at;
      if (!why && hc.max_silence_minutes && now <= end && now - last > hc.max_silence_minutes * 60_000) {
        why = `no health report for ${Math.round((now - last) / 60_000)} minutes (max ${hc.max_silence_minutes})`;
      }
      if (why) {
        markFailed(db, c.campaign_id, d.device_id, why, now);
        reasons.push(`${d.device_id}: ${why}`);
        judged++;
        failed++;
      } else if (reports.length > 0 || now > end) judged++;
    }
    const need = minSample(cfg, totalDevices);
    const rate = percent(failed, judged);
    if (judged < need || rate <= cfg.failure_threshold_percent) return null;
    return {
      trigger: "health_check",
      rule: `unhealthy devices > ${cfg.failure_threshold_percent}% (max_crash_reboots ${hc.max_crash_reboots ?? 0}${hc.min_free_heap !== undefined ? `, min_free_heap ${hc.min_free_heap}` : ""})`,
      observed: { unhealthy: failed, unhealthy_percent: round1(rate), first: reasons[0] ?? "" },
      sample: judged,
      reason: `health check: ${failed} of ${judged} devices unhealthy (${round1(rate)}% > ${cfg.failure_threshold_percent}%)`,
    };
  },
};
