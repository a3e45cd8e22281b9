import { ROUTES } from "../../device/protocol";
import { pageOf } from "../db";
import type { FastifyInstance } from "fastify";
import { notFound } from "../api-error";
import { principalOf } from "../auth/hook";
import { READERS, WRITERS } from "../auth/principal";
import { CAMPAIGN_STATUSES, campaignBodySchema } from "../campaigns/config";
import { campaignToApi, getCampaign, type CampaignRow } from "../campaigns/model";
import { approveCampaign, cancelCampaign, createCampaign, pauseCampaign, previewCampaign, rollbackCampaign, startCampaign } from "../campaigns/service";
import { anyObject, authErrors, idParam, paging, reasonBody, type AppDeps } from "./common";

const campParam = idParam("campaign_id");

export async function campaignRoutes(app: FastifyInstance, { ctx, engine }: AppDeps) {
  const show = (c: CampaignRow) => campaignToApi(ctx.db, c, ctx.clock.now());
  const idOf = (req: { params: unknown }) => (req.params as { campaign_id: string }).campaign_id;

  app.post(ROUTES.campaigns, {
    config: { roles: WRITERS },
    schema: { tags: ["campaigns"], body: campaignBodySchema, response: { 201: anyObject, ...authErrors } },
  }, async (req, reply) => reply.status(201).send(show(createCampaign(ctx, req.body as Record<string, unknown>, principalOf(req)))));

  app.get(ROUTES.campaigns, {
    config: { roles: READERS },
    schema: {
      tags: ["campaigns"],
      querystring: { type: "object", properties: { ...paging, status: { type: "string", enum: [...CAMPAIGN_STATUSES] } } },
      response: { 200: { type: "object", properties: { campaigns: { type: "array", items: anyObject }, total: { type: "integer" } } }, ...authErrors },
    },
  }, async (req) => {
    const q = req.query as { limit: number; offset: number; status?: string };
    const where = q.status ? "WHERE status = ?" : "";
    const args = q.status ? [q.status] : [];
    const { rows, total } = pageOf<CampaignRow>(ctx.db, `campaigns ${where}`, "created_at DESC, rowid DESC", args, q.limit, q.offset);
    return { campaigns: rows.map(show), total };
  });

  app.get(ROUTES.campaign, {
    config: { roles: READERS },
    schema: { tags: ["campaigns"], params: campParam, response: { 200: anyObject, ...authErrors } },
  }, async (req) => {
    const c = getCampaign(ctx.db, idOf(req));
    if (!c) throw notFound("campaign", idOf(req));
    return show(c);
  });

  app.get(ROUTES.campaignDevices, {
    config: { roles: READERS },
    schema: {
      tags: ["campaigns"], params: campParam,
      response: {
        200: {
          type: "object",
          properties: {
            campaign_id: { type: "string" },
            devices: { type: "array", items: { type: "object", properties: { device_id: { type: "string" }, stage: { type: "integer" }, state: { type: "string" }, update_id: { type: ["string", "null"] }, rollback_update_id: { type: ["string", "null"] }, note: { type: ["string", "null"] } } } },
          },
        },
        ...authErrors,
      },
    },
  }, async (req) => {
    if (!getCampaign(ctx.db, idOf(req))) throw notFound("campaign", idOf(req));
    const devices = ctx.db
      .prepare("SELECT device_id, stage_index AS stage, state, update_id, rollback_update_id, note FROM campaign_devices WHERE campaign_id = ? ORDER BY position")
      .all(idOf(req));
    return { campaign_id: idOf(req), devices };
  });

  app.post(ROUTES.campaignPreview, {
    config: { roles: READERS },
    schema: {
      tags: ["campaigns"], params: campParam,
      description: "Who the campaign targets (target_filter evaluated now) and the stages its start would cut them into, with the same seeded sample.",
      response: { 200: anyObject, ...authErrors },
    },
  }, async (req) => previewCampaign(ctx, idOf(req)));

  app.post(ROUTES.campaignApprove, {
    config: { roles: WRITERS },
    schema: { tags: ["campaigns"], params: campParam, body: { type: "object", additionalProperties: false, properties: { approval_comment: { type: ["string", "null"], maxLength: 2000 } } }, response: { 200: anyObject, ...authErrors } },
  }, async (req) => show(approveCampaign(ctx, idOf(req), (req.body as { approval_comment?: string | null }).approval_comment ?? null, principalOf(req))));

  app.post(ROUTES.campaignStart, {
    config: { roles: WRITERS },
    schema: { tags: ["campaigns"], params: campParam, description: "Starts a created campaign or resumes a paused one.", response: { 200: anyObject, ...authErrors } },
  }, async (req) => show(startCampaign(ctx, engine, idOf(req))));

  app.post(ROUTES.campaignPause, {
    config: { roles: WRITERS },
    schema: { tags: ["campaigns"], params: campParam, body: reasonBody, response: { 200: anyObject, ...authErrors } },
  }, async (req) => show(pauseCampaign(ctx, idOf(req), (req.body as { reason?: string | null }).reason ?? null)));

  app.post(ROUTES.campaignCancel, {
    config: { roles: WRITERS },
    schema: { tags: ["campaigns"], params: campParam, body: reasonBody, response: { 200: anyObject, ...authErrors } },
  }, async (req) => show(cancelCampaign(ctx, idOf(req), (req.body as { reason?: string | null }).reason ?? null)));

  app.post(ROUTES.campaignRollback, {
    config: { roles: WRITERS },
    schema: {
      tags: ["campaigns"], params: campParam,
      description: "Sends a signed rollback to the previous firmware to target_devices (default: every device that installed the campaign firmware).",
      body: { type: "object", additionalProperties: false, properties: { reason: { type: ["string", "null"], maxLength: 1000 }, target_devices: { type: "array", maxItems: 10000, items: { type: "string" }, default: [] } } },
      response: { 200: anyObject, ...authErrors },
    },
  }, async (req) => {
    const b = req.body as { reason?: string | null; target_devices: string[] };
    return rollbackCampaign(ctx, engine, idOf(req), b.reason ?? null, b.target_devices);
  });
}
