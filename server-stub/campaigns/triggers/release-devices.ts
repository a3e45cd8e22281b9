// The campaign devices that run the release: their update completed and the server has not rolled them back.
// A device the health check failed stays here (state 'failed', update completed): it still runs the release.
import type { Db } from "../../db";

export interface ReleaseDevice {
  device_id: string;
  update_id: string;
  state: string;
  stage_index: number;
  completed_at: number;
  finished_at: number | null;
}

export function releaseDevices(db: Db, campaignId: string): ReleaseDevice[] {
  return db
    .prepare(
      `SELECT cd.device_id, cd.update_id, cd.state, cd.stage_index, u.completed_at, cd.finished_at FROM campaign_devices cd JOIN updates u ON u.update_id = cd.update_id
       WHERE cd.campaign_id = ? AND cd.state IN ('completed', 'failed') AND u.status = 'completed' AND u.rollback = 0 ORDER BY cd.position`,
    )
    .all(campaignId) as ReleaseDevice[];
}
