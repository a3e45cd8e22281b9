// Rate limiting (@fastify/rate-limit): per credential when the request carries a valid one, else per IP.
// A fleet behind one NAT shares an address, so a valid credential is counted on its own; a caller without
// one (or with a wrong one: guessing keys) is counted by its address. Runs before authentication's
// refusal, so failed guesses count too.
import rateLimit from "@fastify/rate-limit";
import { ROUTES } from "../../device/protocol";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError } from "../api-error";
import { authenticateOnce } from "../auth/hook";
import type { Ctx } from "../context";

export interface RateLimits {
  windowMs: number;
  /** Requests per window for one device credential (a device polls once a minute; downloads resume with Range). */
  perDevice: number;
  /** Requests per window for one admin, operator or viewer credential (scripts, dashboards, the fleet simulator). */
  perUser: number;
  /** Requests per window from one address without a valid credential. */
  perIp: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = { windowMs: 60_000, perDevice: 300, perUser: 6000, perIp: 600 };

export async function installRateLimit(app: FastifyInstance, ctx: Ctx, limits: RateLimits): Promise<void> {
  await app.register(rateLimit, { global: false });
  const keyOf = (req: FastifyRequest): string => {
    const p = authenticateOnce(ctx, req);
    if (!p) return `ip:${req.ip}`;
    return p.role === "device" ? `device:${p.device_id}` : `user:${p.via}:${p.subject}`;
  };
  const maxOf = (key: string): number => (key.startsWith("ip:") ? limits.perIp : key.startsWith("device:") ? limits.perDevice : limits.perUser);
  // A global hook added before the auth hook (route-level hooks would run after authentication had refused).
  app.addHook("onRequest", app.rateLimit({
    // The liveness probe stays answerable under a flood (it touches nothing but a SELECT 1): load balancers and
    // `ota-server wait` must tell a busy server from a dead one.
    allowList: (req: FastifyRequest) => req.url === ROUTES.health || req.url === ROUTES.ready, // so is readiness
    keyGenerator: keyOf,
    max: (_req: FastifyRequest, key: string) => maxOf(key),
    timeWindow: limits.windowMs,
    errorResponseBuilder: (_req, c) => new ApiError(429, "RATE_LIMITED", `more than ${c.max} requests in ${limits.windowMs / 1000} s; retry in ${c.after}`),
  }));
}
