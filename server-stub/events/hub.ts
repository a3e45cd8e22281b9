// In-process notifier: after events were recorded (here, or on another replica: cluster/fanout.ts), one query per
// flush hands the new rows to every listener (SSE clients, the webhook dispatcher); no client polls the database.
import type { Db } from "../db";
import { lastEventId, onEventRecorded, type EventRow } from "./store";

export type EventListener = (rows: readonly EventRow[]) => void;

export class EventHub {
  private listeners = new Set<EventListener>();
  private through: number;
  private scheduled = false;

  constructor(private db: Db) {
    this.through = lastEventId(db);
    // Deferred to a later macrotask: by then the transaction that recorded the event has committed
    // (better-sqlite3 transactions are synchronous), or rolled back and the row never existed.
    onEventRecorded(db, () => this.wake());
  }

  /** Flushes on a later macrotask, once however often it is asked (also when another replica recorded events). */
  wake(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  flush(): void {
    this.scheduled = false;
    if (!this.db.open) return;
    for (;;) {
      const rows = this.db.prepare("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT 1000").all(this.through) as EventRow[];
      if (rows.length === 0) return;
      this.through = rows[rows.length - 1]!.id;
      for (const l of [...this.listeners]) l(rows);
    }
  }
}
