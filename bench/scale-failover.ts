// failover_s: two ota-server processes on one PostgreSQL (scale-replicas.ts), a staged campaign, and kill -9 of the
// engine's leader in the middle stage. Measured: from the kill until the other replica's engine dispatches the next
// stage (the stage's last report goes to the survivor right after the kill). Then every device record and event is
// counted. Used by `npm run bench:scale` and test/server/replicas.test.ts.
import type pg from "pg";
import { pgMissing, startPgCluster } from "../test/support/pg-cluster";
import { call, isLeader, until, withReplicas, type Replica } from "./scale-replicas";

export interface FailoverResult {
  leaderBefore: string;
  leaderAfter: string;
  failoverMs: number;
  status: string;
  /** What is missing or doubled; empty when every device record and event is accounted for. */
  lost: string[];
}

export async function runFailover(opts: { databaseUrl: string; devices: number; batchSize: number }): Promise<FailoverResult> {
  return withReplicas(opts.databaseUrl, opts.devices, async ({ a, b, op, firmwareId, keys, db }) => {
    const replicas = [a, b];
    const ids = [...keys.keys()];
    // The campaign through B, a follower: its start reaches A's engine as a notification.
    const camp = await call(b, op, "POST", "/api/v1/campaigns", {
      name: "failover", firmware_id: firmwareId, deployment_strategy: "staged", batch_size: opts.batchSize, target_devices: ids, selection: "list_order",
    });
    const id = camp.campaign_id as string;
    await call(b, op, "POST", `/api/v1/campaigns/${id}/start`);
    const inStage = async (stage: number) => (await db.query("SELECT device_id, update_id, state FROM campaign_devices WHERE campaign_id = $1 AND stage_index = $2", [id, stage])).rows as Array<{ device_id: string; update_id: string | null; state: string }>;
    const finish = async (rows: Array<{ device_id: string; update_id: string | null }>, via: () => Replica, statuses = ["downloading", "installing", "completed"]) => {
      for (const d of rows) {
        for (const status of statuses) await call(via(), { "x-api-key": keys.get(d.device_id)! }, "POST", `/api/v1/updates/${d.update_id}/status`, { status });
      }
    };
    const dispatched = (stage: number) => until(`stage ${stage} dispatched`, async () => {
      const rows = await inStage(stage);
      return rows.length > 0 && rows.every((r) => r.update_id !== null) && rows;
    }, 15_000);

    let turn = 0;
    await finish(await dispatched(0), () => replicas[turn++ % 2]!);
    const middle = await dispatched(1);
    const last = middle.pop()!;
    await finish(middle, () => replicas[turn++ % 2]!);
    await finish([last], () => replicas[turn++ % 2]!, ["downloading", "installing"]);
    const leader = (await isLeader(a)) ? a : b;
    const survivor = leader === a ? b : a;
    leader.proc.kill("SIGKILL");
    const killedAt = performance.now();
    await finish([last], () => survivor, ["completed"]); // the stage's last report: only a leader can act on it
    await until("stage 2 dispatched by the survivor", async () => (await inStage(2)).some((r) => r.state !== "pending"), 30_000, 10);
    const failoverMs = performance.now() - killedAt;
    for (let stage = 2; (await inStage(stage)).length > 0; stage++) await finish(await dispatched(stage), () => survivor);
    const status = await until("the campaign's end", async () => {
      const s = (await db.query("SELECT status FROM campaigns WHERE campaign_id = $1", [id])).rows[0]?.status as string;
      return s !== "in_progress" && s;
    }, 15_000);
    return { leaderBefore: leader.name, leaderAfter: (await isLeader(survivor)) ? survivor.name : "none", failoverMs, status, lost: await accountFor(db, id, ids) };
  });
}

/** Every device: one campaign record, completed; one update, completed, with its three reports and its scheduled and
 * completed events; the campaign's own events; event ids unique. Returns what does not hold. */
async function accountFor(db: pg.Client, campaignId: string, ids: string[]): Promise<string[]> {
  const lost: string[] = [];
  const q = async (sql: string, args: unknown[] = []) => (await db.query(sql, args)).rows as Array<Record<string, any>>;
  const records = new Map((await q("SELECT device_id, state FROM campaign_devices WHERE campaign_id = $1", [campaignId])).map((r) => [r.device_id, r.state]));
  const updates = await q("SELECT device_id, update_id, status, (SELECT COUNT(*) FROM status_reports s WHERE s.update_id = u.update_id) AS reports FROM updates u WHERE campaign_id = $1", [campaignId]);
  const events = await q("SELECT id, type, update_id FROM events WHERE campaign_id = $1 ORDER BY id", [campaignId]);
  const typesOf = (updateId: string) => events.filter((e) => e.update_id === updateId).map((e) => e.type);
  for (const id of ids) {
    if (records.get(id) !== "completed") lost.push(`${id}: campaign record ${records.get(id) ?? "missing"}`);
    const mine = updates.filter((u) => u.device_id === id);
    if (mine.length !== 1) lost.push(`${id}: ${mine.length} updates`);
    for (const u of mine) {
      if (u.status !== "completed" || Number(u.reports) !== 3) lost.push(`${id}: update ${u.status} with ${u.reports} reports`);
      for (const type of ["update.scheduled", "update.completed"]) if (!typesOf(u.update_id).includes(type)) lost.push(`${id}: no ${type} event`);
    }
  }
  const types = events.map((e) => e.type);
  for (const type of ["campaign.started", "campaign.completed"]) if (!types.includes(type)) lost.push(`no ${type} event`);
  const stages = Number((await q("SELECT COUNT(*) AS n FROM campaign_stages WHERE campaign_id = $1", [campaignId]))[0]!.n);
  if (types.filter((t) => t === "campaign.stage_started").length !== stages) lost.push(`stage_started events: ${types.filter((t) => t === "campaign.stage_started").length} of ${stages}`);
  if (new Set(events.map((e) => e.id)).size !== events.length) lost.push("duplicate event ids");
  return lost;
}

/** failover_s on a throwaway PostgreSQL; a one-line reason instead when there is none. */
export async function measureFailover(devices: number, batchSize: number, log: (s: string) => void = console.log): Promise<(FailoverResult & { devices: number; batchSize: number }) | string> {
  const missing = pgMissing();
  if (missing) return `failover_s: not measured — ${missing}`;
  const cluster = await startPgCluster();
  try {
    const url = await cluster.createDatabase();
    const t0 = performance.now();
    const r = await runFailover({ databaseUrl: url, devices, batchSize });
    log(`failover: ${r.leaderBefore} killed, ${r.leaderAfter} continued after ${(r.failoverMs / 1000).toFixed(2)} s; campaign ${r.status}; run ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await cluster.dropDatabase(url);
    return { ...r, devices, batchSize };
  } finally {
    await cluster.stop();
  }
}
