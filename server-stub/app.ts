// The fastify application: error shape, auth, one plugin per resource.
import multipart from "@fastify/multipart";
import swagger from "@fastify/swagger";
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { DEVICE_ID_MAX } from "../device/protocol";
import { ApiError } from "./api-error";
import { refuseNulStrings } from "./nul-strings";
import { installAuth } from "./auth/hook";
import type { CampaignEngine } from "./campaigns/engine";
import type { Ctx } from "./context";
import type { EventHub } from "./events/hub";
import type { WebhookDispatcher } from "./events/dispatcher";
import { DEFAULT_RATE_LIMITS, installRateLimit, type RateLimits } from "./limits/rate-limit";
import { applyHeadersTimeout, assertJsonDepth, DEFAULT_REQUEST_LIMITS, fastifyLimits, type RequestLimits } from "./limits/request-limits";
import { authRoutes } from "./routes/auth";
import { campaignRoutes } from "./routes/campaigns";
import { credentialRoutes } from "./routes/credentials";
import { dashboardRoutes } from "./routes/dashboard";
import { deviceHealthRoutes } from "./routes/device-health";
import { deviceRoutes } from "./routes/devices";
import { docsRoutes } from "./routes/docs";
import { eventRoutes } from "./routes/events";
import { firmwareRoutes } from "./routes/firmware";
import { groupRoutes } from "./routes/groups";
import { healthRoutes } from "./routes/health";
import { installMetrics, type MetricsAccess } from "./routes/metrics";
import { readyRoutes } from "./routes/ready";
import { keyListRoutes } from "./routes/key-list";
import { keyRoutes } from "./routes/keys";
import { statsRoutes } from "./routes/stats";
import { updateRoutes } from "./routes/updates";
import { webhookRoutes } from "./routes/webhooks";

export interface AppDeps {
  ctx: Ctx;
  engine: CampaignEngine;
  /** Whether this process runs the campaign engine now (cluster/leadership.ts; default: it does). */
  leader?: () => boolean;
  /** connected: null without MQTT. */
  mqttInfo: () => { url: string | null; connected?: boolean | null };
  events: EventsRuntime;
  /** True once a shutdown began: /ready answers 503 while downloads drain. */
  draining?: () => boolean;
}

/** The event stream's moving parts, built by server.ts. */
export interface EventsRuntime {
  hub: EventHub;
  webhooks: WebhookDispatcher;
  /** Period of the SSE `: keep-alive` comment. */
  keepAliveMs: number;
  /** Accept plain-http webhook URLs to hosts other than loopback (they would carry fleet data unencrypted). */
  allowHttpWebhooks: boolean;
}

export const SERVICE_VERSION = "0.1.0";

export interface AppLimits {
  limits?: RequestLimits;
  /** null = no rate limiting. */
  rateLimits?: RateLimits | null;
  /** HTTPS with this certificate and key (PEM); plain HTTP without. */
  https?: { cert: string; key: string } | null;
  /** Who may read /metrics (default: readers' credentials only). */
  metrics?: MetricsAccess;
}

export async function buildApp(deps: AppDeps, logger: Logger, opts: AppLimits = {}): Promise<FastifyInstance> {
  const limits = opts.limits ?? DEFAULT_REQUEST_LIMITS;
  const rateLimits = opts.rateLimits === undefined ? DEFAULT_RATE_LIMITS : opts.rateLimits;
  const https = opts.https ?? null;
  const app = Fastify({
    ...(https ? { https } : {}),
    loggerInstance: logger as unknown as FastifyBaseLogger, // pino types vs fastify's logger interface
    bodyLimit: 1024 * 1024,
    ...fastifyLimits(limits),
    // Path parameters are %-encoded ids of up to DEVICE_ID_MAX characters (fastify's default of 100 cut device ids short).
    routerOptions: { maxParamLength: 3 * DEVICE_ID_MAX },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array", useDefaults: true } },
  });
  applyHeadersTimeout(app, limits);
  installErrorHandling(app, limits);
  if (rateLimits) await installRateLimit(app, deps.ctx, rateLimits); // before the auth hook, so refused guesses count
  installAuth(app, deps.ctx);
  await app.register(swagger, {
    openapi: {
      info: { title: "OTA Service", version: SERVICE_VERSION, description: "ESP32 OTA firmware update server (server-stub)" },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
          apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }],
    },
    // Each operation names who may call it (the same config the auth hook enforces): x-public for routes
    // without credentials, x-roles for the roles allowed (absent: any authenticated caller).
    transform: ({ schema, url, route }) => {
      const cfg = (route.config ?? {}) as { public?: boolean; roles?: readonly string[] };
      const extra = cfg.public ? { "x-public": true } : cfg.roles ? { "x-roles": [...cfg.roles] } : {};
      return { schema: { ...(schema ?? {}), ...extra } as typeof schema, url };
    },
  });
  await app.register(multipart, {
    limits: { fileSize: deps.ctx.config.maxUploadBytes, files: 2, fields: 8, fieldSize: limits.metadataMaxBytes, parts: 12, headerPairs: 100 },
  });
  installMetrics(app, deps, opts.metrics ?? { token: null, open: false }); // after swagger, which documents the routes that follow
  await app.register(healthRoutes, deps);
  await app.register(readyRoutes, deps);
  await app.register(authRoutes, deps);
  await app.register(keyRoutes, deps);
  await app.register(credentialRoutes, deps);
  await app.register(keyListRoutes, deps);
  await app.register(deviceRoutes, deps);
  await app.register(deviceHealthRoutes, deps);
  await app.register(groupRoutes, deps);
  await app.register(firmwareRoutes, deps);
  await app.register(updateRoutes, deps);
  await app.register(campaignRoutes, deps);
  await app.register(statsRoutes, deps);
  await app.register(eventRoutes, deps);
  await app.register(webhookRoutes, deps);
  await app.register(docsRoutes, deps);
  await app.register(dashboardRoutes, deps);
  return app;
}

/** Errors as data; bad input is always a 4xx with a message. */
export function installErrorHandling(app: FastifyInstance, limits: RequestLimits = DEFAULT_REQUEST_LIMITS): void {
  // POST routes with optional bodies (start, cancel, ...) are called without a body by the HOWTO.
  app.addHook("preValidation", async (req) => {
    const multipart = typeof req.isMultipart === "function" && req.isMultipart(); // the auth-port app has no multipart plugin
    if (req.method === "POST" && req.body === undefined && !multipart) req.body = {};
    else if (req.body !== undefined) assertJsonDepth(req.body, limits.jsonDepthMax, "the body");
  });
  // ajv coerces "1e309" (query) and JSON.parse reads 1e999 (body) as Infinity, and Infinity passes
  // `type: integer` with a maximum; refuse non-finite numbers before a handler binds them into SQL.
  app.addHook("preHandler", async (req) => {
    const multipart = typeof req.isMultipart === "function" && req.isMultipart(); // the auth-port app has no multipart plugin
    const where = nonFinite(req.query, "querystring") ?? (multipart ? null : nonFinite(req.body, "body"));
    if (where) throw new ApiError(400, "VALIDATION_ERROR", `${where} must be a finite number`);
    refuseNulStrings(req.params, "params");
    refuseNulStrings(req.query, "querystring");
    if (!multipart) refuseNulStrings(req.body, "body");
  });
  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    if (err instanceof ApiError) {
      return reply.status(err.statusCode).send({ error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } });
    }
    if ((err as FastifyError).validation) {
      return reply.status(400).send({ error: { code: "VALIDATION_ERROR", message: err.message } });
    }
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) {
      return reply.status(status).send({ error: { code: (err as FastifyError).code ?? "BAD_REQUEST", message: err.message } });
    }
    req.log.error({ err }, "unhandled_error");
    return reply.status(500).send({ error: { code: "INTERNAL", message: "internal server error" } });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: { code: "NOT_FOUND", message: `no route ${req.method} ${req.url.split("?")[0]}` } });
  });
}

/** Path of the first non-finite number in a parsed request part (depth-limited), or null. */
function nonFinite(value: unknown, path: string, depth = 0): string | null {
  if (typeof value === "number") return Number.isFinite(value) ? null : path;
  if (depth > 32 || value === null || typeof value !== "object") return null;
  for (const [k, v] of Object.entries(value)) {
    const found = nonFinite(v, `${path}/${k}`, depth + 1);
    if (found) return found;
  }
  return null;
}
