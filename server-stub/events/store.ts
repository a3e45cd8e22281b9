// Recording and reading events. recordEvent runs inside the caller's transaction (one prepared INSERT),
// so an event exists exactly when its state change committed; listeners are told after the commit.
import { iso } from "../clock";
import type { Db } from "../db";
import { PgDb } from "../db/pg";

/** pg_advisory_xact_lock key that orders event inserts across replicas. */
const EVENT_ORDER_LOCK = 0x07a5e7e1;

export interface EventRow {
  id: number;
  at: number;
  type: string;
  campaign_id: string | null;
  device_id: string | null;
  update_id: string | null;
  data: string;
}

export interface OtaEvent {
  id: number;
  at: string;
  type: string;
  campaign_id: string | null;
  device_id: string | null;
  update_id: string | null;
  data: Record<string, unknown>;
}

export interface NewEvent {
  type: string;
  at: number;
  campaign_id?: string | null;
  device_id?: string | null;
  update_id?: string | null;
  data?: Record<string, unknown>;
}

/** Who to wake after an event was recorded on a database (the EventHub of the server that owns it). */
const wakers = new WeakMap<Db, () => void>();

export function onEventRecorded(db: Db, wake: () => void): void {
  wakers.set(db, wake);
}

export function recordEvent(db: Db, e: NewEvent): void {
  const values = [e.at, e.type, e.campaign_id ?? null, e.device_id ?? null, e.update_id ?? null, JSON.stringify(e.data ?? {})];
  if (db instanceof PgDb) {
    // Readers follow `id > cursor`, so ids must commit in order across replicas: the insert is the transaction's last
    // step, under a lock held to the commit. pg_notify wakes every replica's hub, on commit only.
    db.atCommit(() => db.prepare(
      `WITH ordered AS (SELECT pg_advisory_xact_lock(${EVENT_ORDER_LOCK})), woken AS (SELECT pg_notify('ota_events', ''))
       INSERT INTO events(at, type, campaign_id, device_id, update_id, data) SELECT CAST(? AS BIGINT), ?, ?, ?, ?, ? FROM ordered, woken`,
    ).run(...values));
  } else db.prepare("INSERT INTO events(at, type, campaign_id, device_id, update_id, data) VALUES (?, ?, ?, ?, ?, ?)").run(...values);
  wakers.get(db)?.();
}

export function eventToApi(r: EventRow): OtaEvent {
  let data: Record<string, unknown> = {};
  try {
    data = JSON.parse(r.data) as Record<string, unknown>;
  } catch {
    /* stored by this module: always JSON */
  }
  return { id: r.id, at: iso(r.at)!, type: r.type, campaign_id: r.campaign_id, device_id: r.device_id, update_id: r.update_id, data };
}

export interface EventFilter {
  campaign_id?: string | undefined;
  device_id?: string | undefined;
  /** Type prefixes; empty = all. */
  types: string[];
}

export function matches(f: EventFilter, r: Pick<EventRow, "type" | "campaign_id" | "device_id">): boolean {
  if (f.campaign_id !== undefined && r.campaign_id !== f.campaign_id) return false;
  if (f.device_id !== undefined && r.device_id !== f.device_id) return false;
  return f.types.length === 0 || f.types.some((t) => r.type.startsWith(t));
}

/** Events after `after` that pass the filter, oldest first. */
export function eventsAfter(db: Db, f: EventFilter, after: number, limit: number): EventRow[] {
  const where = ["id > ?"];
  const args: unknown[] = [after];
  if (f.campaign_id !== undefined) (where.push("campaign_id = ?"), args.push(f.campaign_id));
  if (f.device_id !== undefined) (where.push("device_id = ?"), args.push(f.device_id));
  if (f.types.length > 0) {
    // substr() rather than LIKE: a prefix may contain _ or %, which LIKE would read as wildcards.
    where.push(`(${f.types.map(() => "substr(type, 1, ?) = ?").join(" OR ")})`);
    for (const t of f.types) args.push(t.length, t);
  }
  return db.prepare(`SELECT * FROM events WHERE ${where.join(" AND ")} ORDER BY id LIMIT ?`).all(...args, limit) as EventRow[];
}

export function lastEventId(db: Db): number {
  return (db.prepare("SELECT COALESCE(MAX(id), 0) AS id FROM events").get() as { id: number }).id;
}

/** Drops events (and webhook delivery logs) older than `before`; queued deliveries of dropped events go with them. */
export function pruneEvents(db: Db, before: number): number {
  return db.transaction(() => {
    const n = db.prepare("DELETE FROM events WHERE at < ?").run(before).changes;
    db.prepare("DELETE FROM webhook_deliveries WHERE at < ?").run(before);
    if (n > 0) db.prepare("DELETE FROM webhook_queue WHERE event_id NOT IN (SELECT id FROM events)").run();
    return n;
  })();
}
