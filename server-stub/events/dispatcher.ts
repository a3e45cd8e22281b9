// Webhook delivery: at least once, in order per lane (a campaign's events, else a device's), retried with
// exponential backoff. Durable: each webhook's cursor (queued_through) advances in the same transaction that
// queues the matching events, and a queued event leaves the queue only after a 2xx (or the last attempt).
import { createHmac } from "node:crypto";
import type { Logger } from "pino";
import type { Clock } from "../clock";
import type { Db } from "../db";
import { logEvent } from "../log";
import type { EventHub } from "./hub";
import { eventToApi, matches, type EventRow } from "./store";
import { type WebhookRow, webhookFilter } from "./webhooks";

export interface DispatchOptions {
  /** First retry delay; each further attempt doubles it, up to retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** After this many failed attempts the event is dropped from the webhook's queue (the delivery log keeps the trail). */
  maxAttempts: number;
  timeoutMs: number;
  /** Deliveries in flight at once, across all webhooks and lanes. */
  concurrency: number;
  /** Real timers wake the dispatcher when a retry is due; off under a ManualClock (its advances wake it instead). */
  useTimers: boolean;
}

export const DISPATCH_DEFAULTS: DispatchOptions = { retryBaseMs: 1000, retryMaxMs: 10 * 60_000, maxAttempts: 15, timeoutMs: 10_000, concurrency: 8, useTimers: true };

interface QueueHead {
  webhook_id: string;
  lane: string;
  event_id: number;
  attempts: number;
  next_at: number;
}

export function signature(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

export function backoffMs(o: Pick<DispatchOptions, "retryBaseMs" | "retryMaxMs">, failedAttempts: number): number {
  return Math.min(o.retryMaxMs, o.retryBaseMs * 2 ** Math.min(30, failedAttempts - 1));
}

/** Events of one campaign stay in order; events outside campaigns keep their order per device. */
function laneOf(r: EventRow): string {
  return r.campaign_id !== null ? `campaign:${r.campaign_id}` : r.device_id !== null ? `device:${r.device_id}` : "-";
}

export class WebhookDispatcher {
  private inFlight = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly abort = new AbortController();
  private idle: Array<() => void> = [];

  constructor(private db: Db, private clock: Clock, private log: Logger, private opts: DispatchOptions) {}

  start(hub: EventHub): () => void {
    const off = hub.subscribe(() => this.wake());
    this.wake();
    return off;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort();
  }

  /** Resolves when no delivery is in flight (tests, shutdown). */
  settled(): Promise<void> {
    return this.inFlight.size === 0 ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }

  wake(): void {
    if (this.closed || !this.db.open) return;
    this.enqueueNew();
    this.dispatchDue();
  }

  private enqueueNew(): void {
    const hooks = this.db.prepare("SELECT * FROM webhooks").all() as WebhookRow[];
    const now = this.clock.now();
    for (const hook of hooks) {
      const filter = webhookFilter(hook);
      this.db.transaction(() => {
        let through = hook.queued_through;
        for (;;) {
          const rows = this.db.prepare("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT 1000").all(through) as EventRow[];
          if (rows.length === 0) break;
          for (const r of rows) {
            if (!matches(filter, r)) continue;
            this.db.prepare("INSERT INTO webhook_queue(webhook_id, event_id, lane, next_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING").run(hook.webhook_id, r.id, laneOf(r), now);
          }
          through = rows[rows.length - 1]!.id;
        }
        if (through !== hook.queued_through) this.db.prepare("UPDATE webhooks SET queued_through = ? WHERE webhook_id = ?").run(through, hook.webhook_id);
      })();
    }
  }

  private dispatchDue(): void {
    const heads = this.db
      .prepare(
        `SELECT q.* FROM webhook_queue q WHERE q.event_id =
           (SELECT MIN(q2.event_id) FROM webhook_queue q2 WHERE q2.webhook_id = q.webhook_id AND q2.lane = q.lane) ORDER BY q.event_id`,
      )
      .all() as QueueHead[];
    const now = this.clock.now();
    let nextDue = Infinity;
    for (const head of heads) {
      const key = `${head.webhook_id}\n${head.lane}`;
      if (this.inFlight.has(key)) continue; // the lane's head is being delivered: the next one waits for it
      if (head.next_at > now) {
        nextDue = Math.min(nextDue, head.next_at);
        continue;
      }
      if (this.inFlight.size >= this.opts.concurrency) break; // a finishing delivery wakes the dispatcher again
      this.inFlight.add(key);
      void this.deliver(head).finally(() => {
        this.inFlight.delete(key);
        if (this.inFlight.size === 0) for (const resolve of this.idle.splice(0)) resolve();
        this.wake();
      });
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.opts.useTimers && nextDue !== Infinity) this.timer = setTimeout(() => this.wake(), Math.max(0, nextDue - now)).unref();
  }

  private async deliver(head: QueueHead): Promise<void> {
    const event = this.db.prepare("SELECT * FROM events WHERE id = ?").get(head.event_id) as EventRow | undefined;
    const hook = this.db.prepare("SELECT * FROM webhooks WHERE webhook_id = ?").get(head.webhook_id) as WebhookRow | undefined;
    if (!event || !hook) {
      this.db.prepare("DELETE FROM webhook_queue WHERE webhook_id = ? AND event_id = ?").run(head.webhook_id, head.event_id);
      return;
    }
    const body = JSON.stringify(eventToApi(event));
    const started = this.clock.now();
    const t0 = performance.now();
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(hook.url, {
        method: "POST",
        body,
        redirect: "manual", // a redirect is a failure, not an invitation to send fleet data elsewhere
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.opts.timeoutMs)]),
        headers: {
          "content-type": "application/json",
          "user-agent": "ota-server-webhooks",
          "x-ota-webhook-id": hook.webhook_id,
          "x-ota-event-id": String(event.id),
          "x-ota-event-type": event.type,
          "x-ota-signature": signature(hook.secret, body),
        },
      });
      status = res.status;
      await res.body?.cancel();
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      error = err.name === "TimeoutError" ? `TIMEOUT after ${this.opts.timeoutMs} ms` : err.cause?.code ? `${err.cause.code}: ${err.cause.message ?? ""}` : err.message;
    }
    if (this.closed || !this.db.open) return; // stays queued: retried after a restart
    this.record(head, hook, event, status, error, started, Math.round(performance.now() - t0));
  }

  private record(head: QueueHead, hook: WebhookRow, event: EventRow, status: number | null, error: string | null, at: number, ms: number): void {
    const attempt = head.attempts + 1;
    const giveUp = error !== null && attempt >= this.opts.maxAttempts;
    this.db.transaction(() => {
      this.db
        .prepare("INSERT INTO webhook_deliveries(webhook_id, event_id, event_type, attempt, status_code, error, ok, at, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .run(hook.webhook_id, event.id, event.type, attempt, status, giveUp ? `${error}; gave up after ${attempt} attempts` : error, error === null ? 1 : 0, at, ms);
      if (error === null || giveUp) this.db.prepare("DELETE FROM webhook_queue WHERE webhook_id = ? AND event_id = ?").run(hook.webhook_id, event.id);
      else this.db.prepare("UPDATE webhook_queue SET attempts = ?, next_at = ? WHERE webhook_id = ? AND event_id = ?").run(attempt, this.clock.now() + backoffMs(this.opts, attempt), hook.webhook_id, event.id);
    })();
    if (error !== null) {
      logEvent(this.log, giveUp ? "webhook_gave_up" : "webhook_delivery_failed", { webhook_id: hook.webhook_id, event_id: event.id, attempt, error }, "warn");
    }
  }
}
