// Authentication (every route but those marked public) and role checks per route.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { forbidden, unauthorized } from "../api-error";
import type { Ctx } from "../context";
import { allowListed } from "./allow-list";
import { deviceOfCertificate } from "./device-certs";
import type { Principal, Role } from "./principal";

declare module "fastify" {
  interface FastifyContextConfig {
    /** No credentials needed (/health, dev-token). */
    public?: boolean;
    /** Roles allowed on this route. */
    roles?: readonly Role[];
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** Who a request is, worked out once (the rate limiter asks before the auth hook does). */
const principals = new WeakMap<FastifyRequest, Principal | null>();
export function authenticateOnce(ctx: Ctx, req: FastifyRequest): Principal | null {
  if (!principals.has(req)) principals.set(req, allowListed(ctx, authenticate(ctx, req)));
  return principals.get(req)!;
}

export function authenticate(ctx: Ctx, req: FastifyRequest): Principal | null {
  const apiKey = req.headers["x-api-key"];
  if (typeof apiKey === "string" && apiKey) return ctx.apiKeys.lookup(apiKey);
  const auth = req.headers.authorization;
  if (typeof auth === "string") {
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    if (m) return ctx.tokens.verify(m[1]!);
  }
  return deviceOfCertificate(ctx, req.socket); // mutual TLS, when the server asks for client certificates
}

export function installAuth(app: FastifyInstance, ctx: Ctx): void {
  app.decorateRequest("principal", null);
  app.addHook("onRequest", async (req) => {
    const cfg = req.routeOptions.config;
    if (cfg.public || !req.routeOptions.url) return; // unknown routes fall through to the 404 handler
    const p = authenticateOnce(ctx, req);
    if (!p) throw unauthorized();
    req.principal = p;
    if (cfg.roles && !cfg.roles.includes(p.role)) throw forbidden(`role ${p.role} may not ${req.method} ${req.routeOptions.url}`);
  });
}

export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw unauthorized();
  return req.principal;
}
