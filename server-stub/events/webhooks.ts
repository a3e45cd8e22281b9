// Webhook subscriptions: where events go, signed with a per-webhook secret.
import { randomBytes } from "node:crypto";
import { badRequest } from "../api-error";
import { iso } from "../clock";
import type { Db } from "../db";
import { json } from "../db";
import { newId } from "../ids";
import { lastEventId, type EventFilter } from "./store";

export interface WebhookRow {
  webhook_id: string;
  url: string;
  secret: string;
  types: string;
  campaign_id: string | null;
  created_by: string | null;
  created_at: number;
  /** Every event up to this id has been queued for the webhook, if it matched. */
  queued_through: number;
}

export function webhookFilter(w: WebhookRow): EventFilter {
  return { campaign_id: w.campaign_id ?? undefined, types: json.parse<string[]>(w.types, []) };
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** http(s) only; plain http only to this machine unless the server was started with --allow-http-webhooks. */
export function checkWebhookUrl(url: string, allowHttp: boolean): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badRequest(`webhook url ${JSON.stringify(url)} is not a URL`, "INVALID_WEBHOOK_URL");
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") throw badRequest("webhook url must be http(s)", "INVALID_WEBHOOK_URL");
  if (u.protocol === "http:" && !allowHttp && !LOOPBACK.test(u.hostname)) {
    throw badRequest(
      "webhook deliveries carry fleet data: use https, or start the server with --allow-http-webhooks to send them unencrypted",
      "INSECURE_WEBHOOK_URL",
    );
  }
}

export interface NewWebhook {
  url: string;
  secret?: string;
  types: string[];
  campaign_id?: string;
}

/** Stores a webhook that receives events recorded from now on; returns it with its secret (shown only here). */
export function createWebhook(db: Db, w: NewWebhook, by: string, now: number): { row: WebhookRow; secret: string } {
  const secret = w.secret ?? randomBytes(32).toString("hex");
  const id = newId("wh");
  db.prepare("INSERT INTO webhooks(webhook_id, url, secret, types, campaign_id, created_by, created_at, queued_through) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    .run(id, w.url, secret, JSON.stringify(w.types), w.campaign_id ?? null, by, now, lastEventId(db));
  return { row: db.prepare("SELECT * FROM webhooks WHERE webhook_id = ?").get(id) as WebhookRow, secret };
}

export function deleteWebhook(db: Db, id: string): boolean {
  return db.transaction(() => {
    db.prepare("DELETE FROM webhook_queue WHERE webhook_id = ?").run(id);
    db.prepare("DELETE FROM webhook_deliveries WHERE webhook_id = ?").run(id);
    return db.prepare("DELETE FROM webhooks WHERE webhook_id = ?").run(id).changes > 0;
  })();
}

export function webhookToApi(db: Db, w: WebhookRow) {
  const pending = (db.prepare("SELECT COUNT(*) AS n FROM webhook_queue WHERE webhook_id = ?").get(w.webhook_id) as { n: number }).n;
  return {
    webhook_id: w.webhook_id, url: w.url, types: json.parse<string[]>(w.types, []), campaign_id: w.campaign_id,
    created_by: w.created_by, created_at: iso(w.created_at), pending_deliveries: pending,
  };
}

export interface DeliveryRow {
  id: number;
  webhook_id: string;
  event_id: number;
  event_type: string;
  attempt: number;
  status_code: number | null;
  error: string | null;
  ok: number;
  at: number;
  duration_ms: number;
}

export const deliveryToApi = (d: DeliveryRow) => ({
  event_id: d.event_id, event_type: d.event_type, attempt: d.attempt, ok: d.ok === 1, status_code: d.status_code, error: d.error,
  at: iso(d.at), duration_ms: d.duration_ms,
});
