// timeout: a device that has not completed within timeout_minutes of being offered the update counts as failed,
// and its update is cancelled (the device hears "cancel" on MQTT, or a 409 on its next report). The trigger fires
// when timed-out devices exceed failure_threshold_percent of the finished ones (at least the minimum sample).
import { getUpdate } from "../../model/updates";
import { cancelUpdateRow } from "../../services/updates";
import { DEFAULTS } from "../config";
import { countStates, logCampaignEvent } from "../model";
import { finished, minSample } from "../thresholds";
import { percent, round1, type Trigger } from "./trigger";

export const timeoutTrigger: Trigger = {
  name: "timeout",
  evaluate({ ctx, campaign: c, cfg, now, totalDevices, since }) {
    const { db } = ctx;
    const limitMs = (cfg.timeout_minutes ?? DEFAULTS.timeout_minutes) * 60_000;
    const late = db
      .prepare(
        `SELECT cd.device_id, cd.update_id FROM campaign_devices cd JOIN updates u ON u.update_id = cd.update_id
         WHERE cd.campaign_id = ? AND cd.state = 'in_progress' AND u.created_at + ? <= ?`,
      )
      .all(c.campaign_id, limitMs, now) as { device_id: string; update_id: string }[];
    for (const d of late) {
      const why = `not completed within ${limitMs / 60_000} minutes`;
      cancelUpdateRow(ctx, getUpdate(db, d.update_id)!, `TIMEOUT: ${why}`);
      db.prepare("UPDATE updates SET error_code = 'TIMEOUT', error_message = ? WHERE update_id = ?").run(why, d.update_id);
      db.prepare("UPDATE campaign_devices SET state = 'failed', note = ?, finished_at = ? WHERE campaign_id = ? AND device_id = ?").run(`TIMEOUT: ${why}`, now, c.campaign_id, d.device_id);
      logCampaignEvent(db, c.campaign_id, now, "device_timed_out", { device_id: d.device_id, update_id: d.update_id });
    }
    // Timed out here, or failed by the server's silence timeout (the same deadline, counted from the last report).
    const timedOut = (db
      .prepare(
        `SELECT COUNT(*) AS n FROM campaign_devices cd JOIN updates u ON u.update_id = cd.update_id
         WHERE cd.campaign_id = ? AND cd.state = 'failed' AND u.error_code = 'TIMEOUT' AND cd.finished_at > ?`,
      )
      .get(c.campaign_id, since) as { n: number }).n;
    if (timedOut === 0) return null;
    const done = finished(countStates(db, c.campaign_id));
    const rate = percent(timedOut, done);
    if (done < minSample(cfg, totalDevices) || rate <= cfg.failure_threshold_percent) return null;
    return {
      trigger: "timeout",
      rule: `devices not completed within ${limitMs / 60_000} minutes > ${cfg.failure_threshold_percent}%`,
      observed: { timed_out: timedOut, timed_out_percent: round1(rate) },
      sample: done,
      reason: `timeout: ${timedOut} of ${done} finished devices did not complete within ${limitMs / 60_000} minutes (${round1(rate)}% > ${cfg.failure_threshold_percent}%)`,
    };
  },
};
