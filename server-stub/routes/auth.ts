import { ROUTES } from "../../device/protocol";
import type { FastifyInstance } from "fastify";
import { ApiError, badRequest } from "../api-error";
import { principalOf } from "../auth/hook";
import { ADMINS, ROLES, type Role } from "../auth/principal";
import type { Ctx } from "../context";
import { logEvent } from "../log";
import { assertDeviceId } from "../model/devices";
import { assertDeviceAllowed } from "../auth/allow-list";
import { authErrors, type AppDeps } from "./common";

const devTokenBody = {
  type: "object",
  additionalProperties: false,
  required: ["user_id"],
  properties: {
    user_id: { type: "string", minLength: 1, maxLength: 128 },
    email: { type: ["string", "null"], maxLength: 256 },
    expires_in: { type: "integer", minimum: 60, maximum: 30 * 24 * 3600, default: 3600 },
    // Never admin unless asked for: a dev token is for trying the server out, not for running it.
    role: { type: "string", enum: [...ROLES], default: "operator" },
    device_id: { type: ["string", "null"], maxLength: 128 },
  },
};

const tokenResponse = {
  type: "object",
  properties: {
    access_token: { type: "string" }, token_type: { type: "string" }, expires_in: { type: "integer" },
    user_id: { type: "string" }, role: { type: "string" }, device_id: { type: ["string", "null"] },
  },
};

/** 127.0.0.0/8 and ::1, also IPv4-mapped: the only callers a dev token is minted for. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return v4.startsWith("127.") || address === "::1";
}

/** POST /api/v1/auth/dev-token, only when turned on (--dev-tokens), only from loopback; also served alone on the auth port (8202 by default). */
export async function devTokenRoute(app: FastifyInstance, ctx: Ctx) {
  app.post(ROUTES.devToken, {
    config: { public: true },
    schema: { tags: ["auth"], security: [], body: devTokenBody, response: { 200: tokenResponse, 400: authErrors[400] } },
  }, async (req) => {
    // The socket's address, not X-Forwarded-For: a proxy in front would make every caller look local.
    if (!isLoopback(req.socket.remoteAddress)) throw new ApiError(403, "DEV_TOKEN_LOOPBACK_ONLY", "dev tokens are issued only to callers on this machine");
    const b = req.body as { user_id: string; email?: string | null; expires_in: number; role: Role; device_id?: string | null };
    if (b.role === "device") {
      if (!b.device_id) throw badRequest("role device needs device_id", "VALIDATION_ERROR");
      assertDeviceId(b.device_id);
      assertDeviceAllowed(ctx, b.device_id);
    }
    const token = ctx.tokens.issue({ user_id: b.user_id, email: b.email ?? null, role: b.role, device_id: b.role === "device" ? b.device_id! : null }, b.expires_in);
    logEvent(ctx.log, "dev_token_issued", { user_id: b.user_id, role: b.role, device_id: b.device_id ?? undefined });
    return { access_token: token, token_type: "Bearer", expires_in: b.expires_in, user_id: b.user_id, role: b.role, device_id: b.role === "device" ? b.device_id! : null };
  });
}

export async function authRoutes(app: FastifyInstance, deps: AppDeps) {
  if (deps.ctx.config.devTokenEnabled) await devTokenRoute(app, deps.ctx);

  app.post(ROUTES.apiKeys, {
    config: { roles: ADMINS },
    schema: {
      tags: ["auth"],
      body: {
        type: "object", additionalProperties: false, required: ["role"],
        properties: { role: { type: "string", enum: ["admin", "operator", "viewer"] }, name: { type: ["string", "null"], maxLength: 128 } },
      },
      response: { 201: { type: "object", properties: { api_key: { type: "string" }, key_prefix: { type: "string" }, role: { type: "string" }, name: { type: ["string", "null"] } } }, ...authErrors },
    },
  }, async (req, reply) => {
    const b = req.body as { role: Role; name?: string | null };
    const { api_key, info } = deps.ctx.apiKeys.create(b.role, { name: b.name ?? undefined });
    logEvent(deps.ctx.log, "api_key_created", { role: b.role, key_prefix: info.key_prefix, by: principalOf(req).subject });
    return reply.status(201).send({ api_key, key_prefix: info.key_prefix, role: info.role, name: info.name });
  });

  app.get(ROUTES.whoami, {
    schema: { tags: ["auth"], response: { 200: { type: "object", properties: { role: { type: "string" }, subject: { type: "string" }, via: { type: "string" }, device_id: { type: ["string", "null"] } } } } },
  }, async (req) => {
    const p = principalOf(req);
    return { role: p.role, subject: p.subject, via: p.via, device_id: p.device_id ?? null };
  });
}
