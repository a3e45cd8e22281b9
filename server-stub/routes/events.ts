// GET /api/v1/events: the event stream as Server-Sent Events (Accept: text/event-stream) or as JSON pages.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { DEVICE_ID_MAX, ROUTES } from "../../device/protocol";
import { badRequest } from "../api-error";
import { READERS } from "../auth/principal";
import { SseClient } from "../events/sse";
import { eventsAfter, eventToApi, lastEventId, type EventFilter } from "../events/store";
import { EVENT_TYPES, isKnownTypePrefix, splitTypes } from "../events/types";
import { authErrors, type AppDeps } from "./common";

export const eventSchema = {
  type: "object",
  required: ["id", "at", "type", "campaign_id", "device_id", "update_id", "data"],
  properties: {
    id: { type: "integer" },
    at: { type: "string", format: "date-time" },
    type: { type: "string", description: `one of ${EVENT_TYPES.join(", ")}` },
    campaign_id: { type: ["string", "null"] },
    device_id: { type: ["string", "null"] },
    update_id: { type: ["string", "null"] },
    data: { type: "object", additionalProperties: true },
  },
};

/** Query filters shared with webhooks: type is a prefix, repeatable or comma-separated. */
export const filterQuery = {
  campaign_id: { type: "string", minLength: 1, maxLength: 128 },
  device_id: { type: "string", minLength: 1, maxLength: DEVICE_ID_MAX },
  type: { type: "array", maxItems: 64, items: { type: "string", maxLength: 200 } },
};

/** Type prefixes that select no known event are a typo: refuse them instead of streaming nothing. */
export function checkedTypes(values: readonly string[] | string | undefined): string[] {
  const types = splitTypes(values);
  const unknown = types.filter((t) => !isKnownTypePrefix(t));
  if (unknown.length) throw badRequest(`unknown event type ${unknown.join(", ")}: use a prefix of ${EVENT_TYPES.join(", ")}`, "UNKNOWN_EVENT_TYPE", { types: unknown });
  return types;
}

interface EventsQuery {
  after?: number;
  limit: number;
  campaign_id?: string;
  device_id?: string;
  type?: string[];
}

/** The id to continue after: Last-Event-ID, else ?after=, else undefined. */
function resumeFrom(req: FastifyRequest, q: EventsQuery): number | undefined {
  const header = req.headers["last-event-id"];
  if (typeof header === "string" && header.trim() !== "") {
    if (!/^\d{1,15}$/.test(header.trim())) throw badRequest("Last-Event-ID must be an event id (a non-negative integer)", "INVALID_LAST_EVENT_ID");
    return Number(header.trim());
  }
  return q.after;
}

export async function eventRoutes(app: FastifyInstance, { ctx, events }: AppDeps) {
  const clients = new Set<SseClient>();
  // Open streams would keep app.close() waiting forever.
  app.addHook("preClose", async () => {
    for (const c of clients) c.close();
  });

  app.get(ROUTES.events, {
    config: { roles: READERS },
    schema: {
      tags: ["events"],
      description: "With `Accept: text/event-stream`: Server-Sent Events (`id`, `event` = type, `data` = the event JSON), resumed after " +
        "`Last-Event-ID` (or `after`; neither: from the next event), a `: keep-alive` comment every 15 s. Otherwise one JSON page of events after `after`.",
      querystring: {
        type: "object", additionalProperties: false,
        properties: { after: { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER }, limit: { type: "integer", minimum: 1, maximum: 500, default: 100 }, ...filterQuery },
      },
      response: {
        200: { type: "object", properties: { events: { type: "array", items: eventSchema }, next_after: { type: "integer" } } },
        ...authErrors,
      },
    },
  }, async (req, reply) => {
    const q = req.query as EventsQuery;
    const filter: EventFilter = { campaign_id: q.campaign_id, device_id: q.device_id, types: checkedTypes(q.type) };
    const after = resumeFrom(req, q);
    if (/\btext\/event-stream\b/.test(req.headers.accept ?? "")) {
      reply.hijack();
      // A new stream (no Last-Event-ID, no after) starts with the next event; after=0 replays all that is retained.
      const client = new SseClient(ctx.db, reply.raw, filter, after ?? lastEventId(ctx.db));
      clients.add(client);
      reply.raw.on("close", () => clients.delete(client));
      client.start(events.hub, { keepAliveMs: events.keepAliveMs });
      return;
    }
    const rows = eventsAfter(ctx.db, filter, after ?? 0, q.limit);
    return { events: rows.map(eventToApi), next_after: rows.length ? rows[rows.length - 1]!.id : (after ?? 0) };
  });
}
