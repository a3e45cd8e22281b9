// Webhooks: subscribe a URL to events, list, delete, read the delivery log. Admin and operator only.
import type { FastifyInstance } from "fastify";
import { ROUTES } from "../../device/protocol";
import { notFound } from "../api-error";
import { principalOf } from "../auth/hook";
import { WRITERS } from "../auth/principal";
import { getCampaign } from "../campaigns/model";
import { pageOf } from "../db";
import { createWebhook, deleteWebhook, deliveryToApi, checkWebhookUrl, webhookToApi, type DeliveryRow, type WebhookRow } from "../events/webhooks";
import { authErrors, idParam, paging, type AppDeps } from "./common";
import { checkedTypes } from "./events";

const nstr = { type: ["string", "null"] };
const webhookSchema = {
  type: "object",
  properties: {
    webhook_id: { type: "string" }, url: { type: "string" }, types: { type: "array", items: { type: "string" } }, campaign_id: nstr,
    created_by: nstr, created_at: { type: "string" }, pending_deliveries: { type: "integer" },
  },
};
const deliverySchema = {
  type: "object",
  properties: {
    event_id: { type: "integer" }, event_type: { type: "string" }, attempt: { type: "integer" }, ok: { type: "boolean" },
    status_code: { type: ["integer", "null"] }, error: nstr, at: { type: "string" }, duration_ms: { type: "integer" },
  },
};
const hookParam = idParam("webhook_id");

export async function webhookRoutes(app: FastifyInstance, { ctx, events }: AppDeps) {
  const load = (id: string): WebhookRow => {
    const w = ctx.db.prepare("SELECT * FROM webhooks WHERE webhook_id = ?").get(id) as WebhookRow | undefined;
    if (!w) throw notFound("webhook", id);
    return w;
  };

  app.post(ROUTES.webhooks, {
    config: { roles: WRITERS },
    schema: {
      tags: ["events"],
      description: "Each delivery POSTs the event JSON with X-OTA-Event-Id, X-OTA-Event-Type and X-OTA-Signature: sha256=<hex HMAC-SHA256(secret, body)>. " +
        "The secret is generated when absent and returned only here.",
      body: {
        type: "object", additionalProperties: false, required: ["url"],
        properties: {
          url: { type: "string", minLength: 1, maxLength: 2048 },
          secret: { type: "string", minLength: 16, maxLength: 256 },
          types: { type: "array", maxItems: 64, items: { type: "string", minLength: 1, maxLength: 200 }, default: [] },
          campaign_id: { type: "string", minLength: 1, maxLength: 128 },
        },
      },
      response: { 201: { type: "object", properties: { ...webhookSchema.properties, secret: { type: "string" } } }, ...authErrors },
    },
  }, async (req, reply) => {
    const b = req.body as { url: string; secret?: string; types: string[]; campaign_id?: string };
    checkWebhookUrl(b.url, events.allowHttpWebhooks);
    const types = checkedTypes(b.types);
    if (b.campaign_id !== undefined && !getCampaign(ctx.db, b.campaign_id)) throw notFound("campaign", b.campaign_id);
    const { row, secret } = createWebhook(ctx.db, { ...b, types }, principalOf(req).subject, ctx.clock.now());
    return reply.status(201).send({ ...webhookToApi(ctx.db, row), secret });
  });

  app.get(ROUTES.webhooks, {
    config: { roles: WRITERS },
    schema: { tags: ["events"], response: { 200: { type: "object", properties: { webhooks: { type: "array", items: webhookSchema } } }, ...authErrors } },
  }, async () => {
    const rows = ctx.db.prepare("SELECT * FROM webhooks ORDER BY created_at, rowid").all() as WebhookRow[];
    return { webhooks: rows.map((w) => webhookToApi(ctx.db, w)) };
  });

  app.delete(ROUTES.webhook, {
    config: { roles: WRITERS },
    schema: { tags: ["events"], params: hookParam, response: { 204: { type: "null" }, ...authErrors } },
  }, async (req, reply) => {
    const { webhook_id } = req.params as { webhook_id: string };
    if (!deleteWebhook(ctx.db, webhook_id)) throw notFound("webhook", webhook_id);
    return reply.status(204).send();
  });

  app.get(ROUTES.webhookDeliveries, {
    config: { roles: WRITERS },
    schema: {
      tags: ["events"], params: hookParam, querystring: { type: "object", properties: { ...paging } },
      response: {
        200: { type: "object", properties: { webhook_id: { type: "string" }, deliveries: { type: "array", items: deliverySchema }, total: { type: "integer" }, pending_deliveries: { type: "integer" } } },
        ...authErrors,
      },
    },
  }, async (req) => {
    const { webhook_id } = req.params as { webhook_id: string };
    const q = req.query as { limit: number; offset: number };
    const w = load(webhook_id);
    const { rows, total } = pageOf<DeliveryRow>(ctx.db, "webhook_deliveries WHERE webhook_id = ?", "id", [webhook_id], q.limit, q.offset);
    return { webhook_id, deliveries: rows.map(deliveryToApi), total, pending_deliveries: webhookToApi(ctx.db, w).pending_deliveries };
  });
}
