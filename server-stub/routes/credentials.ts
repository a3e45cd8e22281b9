// API keys listed and revoked, a device's credentials revoked. A revocation also closes the live MQTT sessions
// that logged in with the revoked credential (ctx.credentialsChanged).
import type { FastifyInstance } from "fastify";
import { ROUTES } from "../../device/protocol";
import { ApiError } from "../api-error";
import { principalOf } from "../auth/hook";
import { ADMINS, ROLES, WRITERS } from "../auth/principal";
import { logEvent } from "../log";
import { assertDeviceId, getDevice } from "../model/devices";
import { authErrors, idParam, type AppDeps } from "./common";

const keyInfo = {
  type: "object",
  properties: {
    key_id: { type: "string" }, key_prefix: { type: "string" }, role: { type: "string" }, device_id: { type: ["string", "null"] },
    name: { type: ["string", "null"] }, created_at: { type: "string" }, revoked: { type: "boolean" },
  },
};

const toApi = <T extends { created_at: number }>(k: T) => ({ ...k, created_at: new Date(k.created_at).toISOString() });

export async function credentialRoutes(app: FastifyInstance, { ctx }: AppDeps) {
  app.get(ROUTES.apiKeys, {
    config: { roles: ADMINS },
    schema: {
      tags: ["auth"],
      querystring: { type: "object", additionalProperties: false, properties: { role: { type: "string", enum: [...ROLES] }, active: { type: "boolean", default: false } } },
      response: { 200: { type: "object", properties: { api_keys: { type: "array", items: keyInfo } } }, ...authErrors },
    },
  }, async (req) => {
    const q = req.query as { role?: (typeof ROLES)[number]; active: boolean };
    return { api_keys: ctx.apiKeys.list({ role: q.role, activeOnly: q.active }).map(toApi) };
  });

  app.delete(ROUTES.apiKey, {
    config: { roles: ADMINS },
    schema: { tags: ["auth"], params: idParam("key_id"), response: { 200: keyInfo, ...authErrors } },
  }, async (req) => {
    const { key_id } = req.params as { key_id: string };
    const info = ctx.apiKeys.revoke(key_id);
    if (!info) throw new ApiError(404, "API_KEY_NOT_FOUND", `no API key ${key_id}`);
    logEvent(ctx.log, "api_key_revoked", { key_id, role: info.role, device_id: info.device_id, by: principalOf(req).subject });
    ctx.credentialsChanged();
    return toApi(info);
  });

  app.post(ROUTES.deviceRevoke, {
    config: { roles: WRITERS },
    schema: {
      tags: ["devices"], params: idParam("device_id"),
      description: "Revokes every API key of the device and closes its MQTT sessions; POST /api/v1/devices gives it a new key.",
      response: { 200: { type: "object", properties: { device_id: { type: "string" }, revoked_keys: { type: "integer" } } }, ...authErrors },
    },
  }, async (req) => {
    const { device_id } = req.params as { device_id: string };
    assertDeviceId(device_id);
    if (!getDevice(ctx.db, device_id)) throw new ApiError(404, "DEVICE_NOT_FOUND", `device ${device_id} not found`);
    const revoked = ctx.apiKeys.revokeDevice(device_id);
    // Registered no more: in allow-list mode its device JWTs stop working too.
    ctx.db.prepare("UPDATE devices SET registered = 0 WHERE device_id = ?").run(device_id);
    logEvent(ctx.log, "device_revoked", { device_id, revoked_keys: revoked, by: principalOf(req).subject });
    ctx.credentialsChanged();
    return { device_id, revoked_keys: revoked };
  });
}
