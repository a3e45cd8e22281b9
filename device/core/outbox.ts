// Status reports survive reboots and outages: each is stored with its sequence number before it is sent,
// and removed only once the server has answered. The server ignores a repeated sequence, so a report
// resent after a power cut is applied once.
import type { StatusReport } from "../protocol/status";
import type { HttpPort, LogPort, StoragePort } from "./ports";

const OUTBOX_KEY = "ota.outbox";
/** Sequence numbers are reserved this many at a time, so a progress report rarely costs a journal commit. */
const SEQUENCE_BLOCK = 16;
/** Bounded: on a long outage the oldest reports make way (a device's storage is small). */
const MAX_ITEMS = 12;

interface Item {
  updateId: string;
  report: StatusReport;
}

interface Saved {
  /** Bound of the reserved sequence numbers: every number below it may have been handed out. */
  next: number;
  items: Item[];
}

export interface OutboxOptions {
  serverUrl: string;
  apiKey: string;
  timeoutMs: number;
}

export class Outbox {
  /** Next sequence number to hand out (below the persisted bound); 0 until this boot took its first. */
  private issued = 0;

  constructor(
    private readonly storage: StoragePort,
    private readonly http: HttpPort,
    private readonly log: LogPort,
    private readonly options: OutboxOptions,
  ) {}

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

  /** Sends stored reports in order; stops at the first that cannot be delivered. True when all went. */
  async flush(): Promise<boolean> {
    for (;;) {
      const saved = this.load();
      const item = saved.items[0];
      if (!item) return true;
      const outcome = await this.send(item.updateId, item.report);
      if (outcome === "retry") return false;
      const now = this.load();
      if (now.items[0] && now.items[0].report.sequence === item.report.sequence) now.items.shift();
      this.save(now);
    }
  }

  /** One report; "retry" on network or server errors, "done" when the server answered for good. */
  async send(updateId: string, report: StatusReport): Promise<"done" | "retry"> {
    try {
      const res = await this.http.request({
        method: "POST",
        url: `${this.options.serverUrl}/api/v1/updates/${encodeURIComponent(updateId)}/status`,
        headers: { "content-type": "application/json", "x-api-key": this.options.apiKey },
        body: JSON.stringify(report),
        timeoutMs: this.options.timeoutMs,
      });
      if (res.status >= 200 && res.status < 300) return "done";
      if (res.status >= 500 || res.status === 429 || res.status === 401) return "retry";
      // 4xx: the server will never accept this report (e.g. the update was cancelled); do not resend forever.
      this.log.log("warn", "status report refused", { update_id: updateId, status: report.status, http: res.status });
      return "done";
    } catch (e) {
      this.log.log("info", "status report deferred", { update_id: updateId, status: report.status, error: String((e as Error).message) });
      return "retry";
    }
  }

  private load(): Saved {
    const raw = this.storage.get(OUTBOX_KEY);
    if (!raw) return { next: 1, items: [] };
    try {
      return JSON.parse(raw) as Saved;
    } catch {
      return { next: 1, items: [] };
    }
  }

  private save(s: Saved) {
    this.storage.set(OUTBOX_KEY, JSON.stringify(s));
  }
}
