// Event retention: events and webhook delivery logs older than the configured number of days are pruned.
import type { Logger } from "pino";
import type { Clock } from "../clock";
import type { Db } from "../db";
import { logEvent } from "../log";
import { pruneEvents } from "./store";

const DAY_MS = 24 * 3600_000;

export class RetentionPruner {
  private lastRun = -Infinity;

  constructor(private db: Db, private clock: Clock, private log: Logger, private days: number) {}

  run(): void {
    if (!this.db.open) return;
    this.lastRun = this.clock.now();
    const removed = pruneEvents(this.db, this.lastRun - this.days * DAY_MS);
    if (removed > 0) logEvent(this.log, "events_pruned", { removed, retention_days: this.days });
  }

  /** At most hourly (clock time): for a clock that jumps, like the tests' ManualClock. */
  maybeRun(): void {
    if (this.clock.now() - this.lastRun >= 3600_000) this.run();
  }
}
