import type { FastifyInstance } from "fastify";
import { statusReportSchema, type StatusReport, ROUTES } from "../../device/protocol";
import { notFound } from "../api-error";
import { principalOf } from "../auth/hook";
import { assertDeviceScope, DEVICE_FACING, READERS, WRITERS } from "../auth/principal";
import { getUpdate, updateSchema, updateToApi } from "../model/updates";
import { retryUpdate } from "../services/retries";
import { reportStatus } from "../services/status-reports";
import { cancelUpdate } from "../services/updates";
import { authErrors, idParam, reasonBody, type AppDeps } from "./common";

const updParam = idParam("update_id");

export async function updateRoutes(app: FastifyInstance, { ctx }: AppDeps) {
  app.get(ROUTES.update, {
    config: { roles: READERS },
    schema: { tags: ["updates"], params: updParam, response: { 200: updateSchema, ...authErrors } },
  }, async (req) => {
    const { update_id } = req.params as { update_id: string };
    const u = getUpdate(ctx.db, update_id);
    if (!u) throw notFound("update", update_id);
    return updateToApi(u);
  });

  app.post(ROUTES.updateStatus, {
    config: { roles: DEVICE_FACING },
    schema: {
      tags: ["device-facing"], params: updParam, body: statusReportSchema,
      response: { 200: { type: "object", properties: { accepted: { type: "boolean" }, duplicate: { type: "boolean" }, update: updateSchema } }, ...authErrors },
    },
  }, async (req) => {
    const { update_id } = req.params as { update_id: string };
    const u = getUpdate(ctx.db, update_id);
    if (!u) throw notFound("update", update_id);
    assertDeviceScope(principalOf(req), u.device_id);
    const r = reportStatus(ctx, update_id, req.body as StatusReport, "http");
    return { accepted: !r.duplicate, duplicate: r.duplicate, update: updateToApi(r.update) };
  });

  app.post(ROUTES.updateCancel, {
    config: { roles: WRITERS },
    schema: { tags: ["updates"], params: updParam, body: reasonBody, response: { 200: updateSchema, ...authErrors } },
  }, async (req) => {
    const { update_id } = req.params as { update_id: string };
    return updateToApi(cancelUpdate(ctx, update_id, (req.body as { reason?: string | null }).reason ?? null));
  });

  app.post(ROUTES.updateRetry, {
    config: { roles: WRITERS },
    schema: {
      tags: ["updates"], params: updParam,
      description: "Creates a new attempt (a new update linked by retry_of). max_retries further automatic retries follow failures, retry_delay seconds apart.",
      body: { type: "object", additionalProperties: false, properties: { max_retries: { type: "integer", minimum: 0, maximum: 20 }, retry_delay: { type: "integer", minimum: 0, maximum: 86400 } } },
      response: { 201: updateSchema, ...authErrors },
    },
  }, async (req, reply) => {
    const { update_id } = req.params as { update_id: string };
    return reply.status(201).send(updateToApi(retryUpdate(ctx, update_id, req.body as { max_retries?: number; retry_delay?: number })));
  });
}
