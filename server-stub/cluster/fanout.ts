// What one replica does must reach the others: PostgreSQL LISTEN/NOTIFY on a connection of its own (asynchronous,
// unlike the statement connection, so notifications arrive while the process is idle). A notification sent inside a
// transaction is delivered only if and when it commits, which keeps "only after commit, only if committed".
import pg from "pg";
import type { Logger } from "pino";
import type { OtaNotification } from "../../device/protocol";
import type { Db } from "../db";
import type { EventHub } from "../events/hub";
import type { OtaBus } from "../mqtt/bus";
import type { LeaderEngine } from "./leader-only";

export const CHANNELS = { events: "ota_events", device: "ota_device", kick: "ota_kick", creds: "ota_creds" } as const;

export interface FanoutHandlers {
  /** Events were committed somewhere: flush the hub. */
  events(): void;
  /** A device notification to publish to the devices connected here. */
  device(deviceId: string, message: OtaNotification): void;
  /** The engine should re-evaluate (the leader answers). */
  kick(): void;
  /** A key or device was revoked: recheck live sessions. */
  creds(): void;
}

/** Sends on the statement connection, so a notification joins the caller's transaction. */
export function pgNotify(db: Db, channel: string, payload = ""): void {
  db.prepare("SELECT pg_notify(?, ?)").get(channel, payload);
}

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;

/** A LISTEN connection that comes back after a drop (with backoff) and, once back, flushes events it may have missed. */
export class FanoutListener {
  private client: pg.Client | null = null;
  private closed = false;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(private readonly url: string, private readonly log: Logger, private readonly on: FanoutHandlers) {}

  /** Resolves once listening (the first time: a start fails if the database refuses). */
  async start(): Promise<void> {
    await this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const c = new pg.Client({ connectionString: this.url, keepAlive: true, application_name: "ota-server-listen" });
    c.on("error", (err) => this.lost(c, err));
    c.on("end", () => this.lost(c, null));
    c.on("notification", (n) => this.dispatch(n.channel, n.payload ?? ""));
    await c.connect();
    await c.query(Object.values(CHANNELS).map((ch) => `LISTEN ${ch}`).join("; "));
    if (this.closed) return void (await c.end().catch(() => undefined));
    this.client = c;
    this.retryMs = RETRY_MIN_MS;
  }

  private lost(c: pg.Client, err: Error | null): void {
    if (this.client !== c || this.closed) return;
    this.client = null;
    this.log.warn({ err: err ? { message: err.message } : undefined }, "cluster_listen_lost");
    this.reconnectLater();
  }

  private reconnectLater(): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.closed) return;
      this.connect().then(
        () => (this.on.events(), this.on.kick(), this.on.creds()), // what happened while deaf
        (err: Error) => {
          this.log.warn({ err: { message: err.message } }, "cluster_listen_reconnect_failed");
          this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
          this.reconnectLater();
        },
      );
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private dispatch(channel: string, payload: string): void {
    try {
      if (channel === CHANNELS.events) this.on.events();
      else if (channel === CHANNELS.kick) this.on.kick();
      else if (channel === CHANNELS.creds) this.on.creds();
      else if (channel === CHANNELS.device) {
        const { device_id, message } = JSON.parse(payload) as { device_id: string; message: OtaNotification };
        this.on.device(device_id, message);
      }
    } catch (err) {
      this.log.error({ err, channel }, `cluster_notification_failed channel=${channel}`);
    }
  }
}

/** Wires a replica's listener: the hub flushes, the leader ticks (once for a burst of kicks), the local broker publishes
 * to its own devices and rechecks its sessions. */
export async function listenToReplicas(url: string, log: Logger, on: { hub: EventHub; engine: LeaderEngine; bus: () => OtaBus | null }): Promise<FanoutListener> {
  let tickScheduled = false;
  const listener = new FanoutListener(url, log, {
    events: () => on.hub.wake(),
    kick: () => {
      if (tickScheduled) return;
      tickScheduled = true;
      setImmediate(() => ((tickScheduled = false), on.engine.tickIfLeader()));
    },
    creds: () => on.bus()?.recheckCredentials(),
    device: (deviceId, message) => on.bus()?.publish(deviceId, message),
  });
  await listener.start();
  return listener;
}
