// Which replica runs the campaign engine and the other once-per-fleet work: the holder of a session-level PostgreSQL
// advisory lock on this process's one connection. The lock lives exactly as long as that connection: a replica that
// dies (kill -9 included) frees it at once, and a connection that drops and comes back no longer holds it. So the
// state is read from pg_locks before each leader-only task, never remembered. SQLite: one process, always leader.
import type { Logger } from "pino";
import type { Db } from "../db";
import { logEvent } from "../log";

/** pg_try_advisory_lock key of the engine (below 2^31: pg_locks shows it as classid 0, objid KEY). */
export const ENGINE_LOCK = 0x07a5e961;

export class Leadership {
  private was = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly db: Db, private readonly log: Logger, private readonly replica: string) {}

  /** Whether this process runs the engine now; on PostgreSQL, takes the lock when it is free. */
  check(): boolean {
    if (this.db.dialect === "sqlite") return true;
    if (!this.db.open || this.stopped) return this.changed(false);
    try {
      return this.changed(this.holds() || this.take());
    } catch (err) {
      this.log.warn({ err }, "engine_leadership_check_failed");
      return this.changed(false); // no database: act as a follower until it answers
    }
  }

  /** Checks every `periodMs`, calling onGain when this process becomes the leader (to catch up at once). */
  start(periodMs: number, onGain: () => void): void {
    let before = this.check();
    if (before) onGain();
    if (this.db.dialect === "sqlite") return;
    this.timer = setInterval(() => {
      const now = this.check();
      if (now && !before) onGain();
      before = now;
    }, periodMs);
    this.timer.unref();
  }

  /** Hands the engine over now (a shutdown that drains downloads first would otherwise hold it for the drain). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.stopped = true;
    if (this.db.dialect === "sqlite" || !this.was) return;
    this.was = false;
    try {
      if (this.db.open && this.holds()) this.db.prepare("SELECT pg_advisory_unlock(?)").get(ENGINE_LOCK);
    } catch {
      // the connection is gone, and the lock with it
    }
    logEvent(this.log, "engine_leadership_released", { replica: this.replica });
  }

  private holds(): boolean {
    return this.db.prepare(
      "SELECT 1 AS held FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = ? AND objsubid = 1 AND pid = pg_backend_pid() AND granted",
    ).get(ENGINE_LOCK) !== undefined;
  }

  /** Called only when not held: a second pg_try_advisory_lock while holding would stack. */
  private take(): boolean {
    return Boolean((this.db.prepare("SELECT pg_try_advisory_lock(?) AS ok").get(ENGINE_LOCK) as { ok: number | boolean }).ok);
  }

  private changed(leader: boolean): boolean {
    if (leader !== this.was) logEvent(this.log, leader ? "engine_leadership_gained" : "engine_leadership_lost", { replica: this.replica }, leader ? "info" : "warn");
    this.was = leader;
    return leader;
  }
}
