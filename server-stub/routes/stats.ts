import type { FastifyInstance } from "fastify";
import { UPDATE_STATUSES, ROUTES } from "../../device/protocol";
import { notFound } from "../api-error";
import { READERS } from "../auth/principal";
import { campaignToApi, getCampaign } from "../campaigns/model";
import { iso } from "../clock";
import { json, readCounter } from "../db";
import { anyObject, authErrors, idParam, type AppDeps } from "./common";

interface Agg {
  completed: number;
  failed: number;
  rolled_back: number;
  mean_ms: number | null;
}

export async function statsRoutes(app: FastifyInstance, { ctx }: AppDeps) {
  const aggregate = (where: string, args: unknown[]): Agg =>
    ctx.db
      .prepare(
        `SELECT SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS completed, SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed,
           SUM(CASE WHEN status = 'rolled_back' THEN 1 ELSE 0 END) AS rolled_back,
           AVG(CASE WHEN status = 'completed' THEN completed_at - COALESCE(started_at, created_at) END) AS mean_ms
         FROM updates ${where}`,
      )
      .get(...args) as Agg;
  const rate = (a: Agg) => {
    const done = (a.completed ?? 0) + (a.failed ?? 0) + (a.rolled_back ?? 0);
    return done ? Math.round(((a.completed ?? 0) / done) * 10000) / 100 : null;
  };
  const byStatus = (where: string, args: unknown[]) => {
    const out: Record<string, number> = Object.fromEntries(UPDATE_STATUSES.map((s) => [s, 0]));
    for (const r of ctx.db.prepare(`SELECT status, COUNT(*) AS n FROM updates ${where} GROUP BY status`).all(...args) as { status: string; n: number }[]) out[r.status] = r.n;
    return out;
  };

  app.get(ROUTES.stats, {
    config: { roles: READERS },
    schema: { tags: ["stats"], response: { 200: anyObject, ...authErrors } },
  }, async () => {
    const a = aggregate("", []);
    const versions = ctx.db.prepare("SELECT COALESCE(current_version, 'unknown') AS v, COUNT(*) AS n FROM devices GROUP BY v ORDER BY n DESC, v").all() as { v: string; n: number }[];
    const campaigns = ctx.db.prepare("SELECT status, COUNT(*) AS n FROM campaigns GROUP BY status").all() as { status: string; n: number }[];
    const devices = ctx.db.prepare("SELECT COUNT(*) AS total, SUM(registered) AS registered FROM devices").get() as { total: number; registered: number | null };
    const updatesByStatus = byStatus("", []);
    return {
      updates_by_status: updatesByStatus,
      total_updates: Object.values(updatesByStatus).reduce((x, y) => x + y, 0),
      success_rate: rate(a),
      mean_duration_seconds: a.mean_ms === null ? null : Math.round(a.mean_ms / 100) / 10,
      bytes_served: readCounter(ctx.db, "bytes_served"),
      // Of which delta patches; and what those deltas saved against the full images.
      bytes_served_delta: readCounter(ctx.db, "bytes_served_delta"),
      bytes_served_full: readCounter(ctx.db, "bytes_served") - readCounter(ctx.db, "bytes_served_delta"),
      delta_bytes_saved: (ctx.db.prepare("SELECT COALESCE(SUM(bytes_saved), 0) AS n FROM updates WHERE delivery = 'delta'").get() as { n: number }).n,
      updates_by_delivery: Object.fromEntries((ctx.db.prepare("SELECT COALESCE(delivery, 'unknown') AS d, COUNT(*) AS n FROM updates GROUP BY d").all() as { d: string; n: number }[]).map((r) => [r.d, r.n])),
      devices: { total: devices.total, registered: devices.registered ?? 0, waiting: devices.total - (devices.registered ?? 0) },
      devices_by_version: Object.fromEntries(versions.map((r) => [r.v, r.n])),
      campaigns_by_status: Object.fromEntries(campaigns.map((r) => [r.status, r.n])),
      firmware_count: (ctx.db.prepare("SELECT COUNT(*) AS n FROM firmware").get() as { n: number }).n,
      generated_at: iso(ctx.clock.now()),
    };
  });

  app.get(ROUTES.campaignStats, {
    config: { roles: READERS },
    schema: { tags: ["stats"], params: idParam("campaign_id"), response: { 200: anyObject, ...authErrors } },
  }, async (req) => {
    const { campaign_id } = req.params as { campaign_id: string };
    const c = getCampaign(ctx.db, campaign_id);
    if (!c) throw notFound("campaign", campaign_id);
    const view = campaignToApi(ctx.db, c, ctx.clock.now());
    const main = aggregate("WHERE campaign_id = ? AND rollback = 0", [campaign_id]);
    const errors = ctx.db.prepare("SELECT error_code, COUNT(*) AS n FROM updates WHERE campaign_id = ? AND status IN ('failed','rolled_back') GROUP BY error_code").all(campaign_id) as { error_code: string | null; n: number }[];
    const events = ctx.db.prepare("SELECT at, type, detail FROM campaign_events WHERE campaign_id = ? ORDER BY id DESC LIMIT 100").all(campaign_id) as { at: number; type: string; detail: string }[];
    return {
      campaign_id,
      status: view.status,
      total_devices: view.total_devices,
      completed_devices: view.completed_devices,
      failed_devices: view.failed_devices,
      in_progress_devices: view.in_progress_devices,
      pending_devices: view.pending_devices,
      skipped_devices: view.skipped_devices,
      cancelled_devices: view.cancelled_devices,
      rolled_back_devices: view.rolled_back_devices,
      rolled_back_by_device: view.rolled_back_by_device,
      rolled_back_by_server: view.rolled_back_by_server,
      failure_rate_percent: view.failure_rate_percent,
      success_rate: rate(main),
      mean_duration_seconds: main.mean_ms === null ? null : Math.round(main.mean_ms / 100) / 10,
      updates_by_status: byStatus("WHERE campaign_id = ? AND rollback = 0", [campaign_id]),
      rollback_updates_by_status: byStatus("WHERE campaign_id = ? AND rollback = 1", [campaign_id]),
      failures_by_error_code: Object.fromEntries(errors.map((e) => [e.error_code ?? "UNKNOWN", e.n])),
      stages: view.stages,
      events: events.map((e) => ({ at: iso(e.at), type: e.type, detail: json.parse(e.detail, {}) })),
    };
  });
}
