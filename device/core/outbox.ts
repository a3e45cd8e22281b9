// Status reports survive reboots and outages: each is stored with its sequence number before it is sent,
// and removed only once the server has answered. The server ignores a repeated sequence, so a report
// resent after a power cut is applied once.
import type { HealthReport } from "../protocol/health";
import type { StatusReport } from "../protocol/status";
import type { StoragePort } from "./ports";

const OUTBOX_KEY = "ota.outbox";
/** Sequence numbers are reserved this many at a time, so a progress report rarely costs a journal commit. */
const SEQUENCE_BLOCK = 16;
/** Bounded: on a long outage the oldest reports make way (a device's storage is small). */
const MAX_ITEMS = 12;

/** A status report of an update, or a health report (health.ts; at most one is queued). */
type Item = { updateId: string; report: StatusReport } | { health: HealthReport };

const sequenceOf = (item: Item) => ("health" in item ? item.health.sequence : item.report.sequence);

interface Saved {
  /** Bound of the reserved sequence numbers: every number below it may have been handed out. */
  next: number;
  items: Item[];
}

/** Delivers one report: "retry" keeps it queued, "done" removes it (UpdateClient.report). */
export type Deliver = (updateId: string, report: StatusReport) => Promise<"done" | "retry">;
export type DeliverHealth = (report: HealthReport) => Promise<"done" | "retry">;

export class Outbox {
  /** Next sequence number to hand out (below the persisted bound); 0 until this boot took its first. */
  private issued = 0;
  /** The queue as last read or stored, with its stored text: a progress report (pending, then takeSequence) does
   * not parse it again. Dropped whenever a save fails, so it never holds what the journal does not. */
  private cached: { raw: string; saved: Saved } | null = null;

  constructor(
    private readonly storage: StoragePort,
    private readonly deliver: Deliver,
    private readonly deliverHealth: DeliverHealth = () => Promise.resolve("done"),
  ) {}

  private flushing: Promise<boolean> | null = null;

  get pending(): number {
    return this.load().items.length;
  }

  /** Stores a report durably; returns its sequence number. */
  add(updateId: string, report: Omit<StatusReport, "sequence">): number {
    const saved = this.load();
    const sequence = this.nextSequence(saved);
    saved.items.push({ updateId, report: { ...report, sequence } });
    if (saved.items.length > MAX_ITEMS) saved.items.splice(0, saved.items.length - MAX_ITEMS);
    this.save(saved);
    return sequence;
  }

  /** Stores a health report, replacing one still queued (the newer says more); returns its sequence number. */
  addHealth(report: Omit<HealthReport, "sequence">): number {
    const saved = this.load();
    const sequence = this.nextSequence(saved);
    saved.items = saved.items.filter((i) => !("health" in i));
    saved.items.push({ health: { ...report, sequence } });
    if (saved.items.length > MAX_ITEMS) saved.items.splice(0, saved.items.length - MAX_ITEMS);
    this.save(saved);
    return sequence;
  }

  /** Next sequence number without storing anything (for best-effort progress reports). */
  takeSequence(): number {
    const saved = this.load();
    const bound = saved.next;
    const sequence = this.nextSequence(saved);
    if (saved.next !== bound) this.save(saved);
    return sequence;
  }

  /** Hands out numbers from memory; when the reserved block runs out, reserves the next in `saved` (the caller
   * persists it before the number is used). After a reboot numbers continue from the persisted bound, so none
   * is used twice even across power cuts. */
  private nextSequence(saved: Saved): number {
    if (this.issued < 1) this.issued = saved.next;
    const sequence = this.issued++;
    if (sequence >= saved.next) saved.next = sequence + SEQUENCE_BLOCK;
    return sequence;
  }

  /** Sends stored reports in order; stops at the first that cannot be delivered. True when all went. One
   * flush runs at a time (a report is never in flight twice): a caller arriving meanwhile waits for it, then
   * delivers what was added since. */
  flush(): Promise<boolean> {
    const previous = this.flushing;
    const run = previous ? previous.then(() => this.deliverQueued(), () => this.deliverQueued()) : this.deliverQueued();
    this.flushing = run;
    const settle = () => {
      if (this.flushing === run) this.flushing = null;
    };
    run.then(settle, settle);
    return run;
  }

  private async deliverQueued(): Promise<boolean> {
    for (;;) {
      const saved = this.load();
      const item = saved.items[0];
      if (!item) return true;
      const outcome = await ("health" in item ? this.deliverHealth(item.health) : this.send(item.updateId, item.report));
      if (outcome === "retry") return false;
      const now = this.load();
      if (now.items[0] && sequenceOf(now.items[0]) === sequenceOf(item)) now.items.shift();
      this.save(now);
    }
  }

  /** One report, straight to the server (best-effort progress reports skip the queue). */
  send(updateId: string, report: StatusReport): Promise<"done" | "retry"> {
    return this.deliver(updateId, report);
  }

  private load(): Saved {
    const raw = this.storage.get(OUTBOX_KEY);
    if (!raw) return { next: 1, items: [] };
    if (this.cached?.raw === raw) return this.cached.saved;
    try {
      const saved = JSON.parse(raw) as Saved;
      this.cached = { raw, saved };
      return saved;
    } catch {
      return { next: 1, items: [] };
    }
  }

  private save(s: Saved) {
    const raw = JSON.stringify(s);
    this.cached = null;
    this.storage.set(OUTBOX_KEY, raw);
    this.cached = { raw, saved: s };
  }
}
