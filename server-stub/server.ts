// Wires store, keys, MQTT, engine and HTTP listeners together. Used by the CLI and by tests.
import { mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import pino, { type Logger } from "pino";
import type { AddressInfo } from "node:net";
import { IMAGE_SIZE_MAX, PUBLIC_URL_MAX, type PublicKeyEntry } from "../device/protocol";
import { buildApp, installErrorHandling, type EventsRuntime } from "./app";
import { DEFAULT_RATE_LIMITS, installRateLimit, type RateLimits } from "./limits/rate-limit";
import { DEFAULT_REQUEST_LIMITS, fastifyLimits, type RequestLimits } from "./limits/request-limits";
import { ApiKeyStore } from "./auth/api-keys";
import { clientCertOptions } from "./auth/device-certs";
import { installAuth } from "./auth/hook";
import { loadJwtSecret, TokenService } from "./auth/tokens";
import type { CampaignEngine } from "./campaigns/engine";
import { CHANNELS, listenToReplicas, pgNotify } from "./cluster/fanout";
import { LeaderEngine, LeaderWebhooks } from "./cluster/leader-only";
import { Leadership } from "./cluster/leadership";
import { ManualClock, systemClock, type Clock } from "./clock";
import type { PromotionGate } from "./campaigns/gates";
import type { CdnConfig, Ctx } from "./context";
import { openDatabase, type Db } from "./db";
import { DISPATCH_DEFAULTS, type DispatchOptions } from "./events/dispatcher";
import { EventHub } from "./events/hub";
import { RetentionPruner } from "./events/retention";
import { getUpdate } from "./model/updates";
import { logEvent } from "./log";
import type { OtaBus } from "./mqtt/bus";
import { startEmbeddedBroker } from "./mqtt/embedded";
import { connectExternalBroker } from "./mqtt/external";
import { devTokenRoute } from "./routes/auth";
import { drain } from "./drain";
import { isLoopbackHost } from "./tls";
import { KeyStore } from "./signing/keystore";
import { BlobStore } from "./storage/blobs";

export interface ServerOptions {
  dataDir: string;
  /** postgres://… : PostgreSQL, shared by any number of replicas; else SQLite at <dataDir>/ota.sqlite. */
  databaseUrl?: string | null;
  /** Content-addressed firmware and patches (default <dataDir>/blobs); replicas share one (uploads in progress stay in <dataDir>/tmp). */
  blobDir?: string | null;
  port?: number; // default 8221; 0 = ephemeral
  host?: string; // default 0.0.0.0
  publicUrl?: string; // default http://localhost:<port>
  /** Embedded broker port (default 1883; 0 = ephemeral); null disables MQTT unless mqttUrl is set. */
  mqttPort?: number | null;
  mqttUrl?: string | null;
  /** The server's account on the external broker (else the URL's user info). */
  mqttUsername?: string | null;
  mqttPassword?: string | null;
  /** "dynsec" (default): provision device accounts and ACLs into Mosquitto; "none": the broker is configured by hand. */
  mqttProvisioning?: "dynsec" | "none";
  /** Port of the separate dev-token listener (default 8202; loopback only); null = none. */
  authPort?: number | null;
  /** Dev tokens (default off): only from loopback callers, operator unless another role is asked for. */
  devToken?: boolean;
  /** Only device ids an operator registered may authenticate (default off). */
  deviceAllowList?: boolean;
  /** A campaign's approver must differ from its creator (default off). */
  distinctApprover?: boolean;
  /** false = no rate limiting (default DEFAULT_RATE_LIMITS). */
  rateLimits?: Partial<RateLimits> | false;
  /** Limits on request time, body sizes and MQTT packets (default DEFAULT_REQUEST_LIMITS). */
  requestLimits?: Partial<RequestLimits>;
  signingKeyFile?: string | null;
  clock?: Clock;
  /** Engine tick period with the system clock (default 1000 ms); 0 = only on events. A ManualClock ticks on every advance. */
  tickIntervalMs?: number;
  logger?: Logger;
  manifestTtlSeconds?: number;
  maxUploadBytes?: number;
  defaultTimeoutMinutes?: number;
  /** Events and webhook delivery logs older than this are pruned (default 30). */
  eventRetentionDays?: number;
  /** Webhooks may use plain http to hosts other than loopback (default false: fleet data would travel unencrypted). */
  allowHttpWebhooks?: boolean;
  /** Webhook retry timing and limits (tests shorten them). */
  webhooks?: Partial<DispatchOptions>;
  /** SSE keep-alive comment period (default 15 s). */
  sseKeepAliveMs?: number;
  cdn?: CdnConfig | null;
  /** Rules asked before a campaign promotes a stage (campaigns/gates.ts); none = every stage passes. */
  promotionGates?: PromotionGate[];
  /** Release public keys uploads are checked against (--release-key). */
  releaseKeys?: PublicKeyEntry[];
  requireReleaseSignature?: boolean;
  /** Build and offer delta patches (default true; false: every device downloads full images). */
  deltas?: boolean;
  /** HTTPS and MQTT over TLS with this certificate and key (PEM); plain listeners without it. `clientCa`: ask clients
   * for a certificate, and let one this CA issued to a device stand for it (mutual TLS, auth/device-certs.ts). */
  tls?: { cert: string; key: string; clientCa?: string | null } | null;
  /** How long close() lets in-flight requests (downloads) finish before cutting them (default 30 s). */
  drainMs?: number;
  /** A bearer token that may read /metrics (besides viewer/operator/admin credentials). */
  metricsToken?: string | null;
  /** /metrics without credentials (default: only when `host` is loopback). */
  metricsOpen?: boolean;
  /** Registers more routes on the REST app before it listens (bench/scale.ts's hello-world baseline). */
  extraRoutes?: (app: FastifyInstance) => void;
}

export interface OtaServer {
  url: string;
  port: number;
  /** Whether REST, MQTT and the dev-token listener speak TLS. */
  tls: boolean;
  authUrl: string | null;
  mqttUrl: string | null;
  mqttPort: number | null;
  ctx: Ctx;
  engine: CampaignEngine;
  /** Whether this process runs the campaign engine now (PostgreSQL: holds the advisory lock; SQLite: always). */
  leadership: Leadership;
  app: FastifyInstance;
  events: EventsRuntime;
  close(): Promise<void>;
}

/** http(s), printable ASCII without blanks, quotes or backslashes: it starts every manifest's download_url, which devices
 * bound (device/protocol/limits.ts) and which must not need JSON escapes to fit the envelope size. */
const PUBLIC_URL_RE = /^https?:\/\/[!#-[\]-~]+$/;

/** What is wrong with options a device could not live with, or null. */
export function serverOptionsProblem(opts: Pick<ServerOptions, "publicUrl" | "maxUploadBytes" | "cdn">): string | null {
  for (const [name, url] of [["CDN base URL", opts.cdn?.base_url], ["CDN fallback URL", opts.cdn?.fallback_url]] as const) {
    // Same rule as the public URL: each starts a manifest URL the device bounds.
    if (url != null && (!PUBLIC_URL_RE.test(url) || url.length > PUBLIC_URL_MAX)) return `${name} must be an http(s) URL of at most ${PUBLIC_URL_MAX} characters without spaces, quotes or backslashes`;
  }
  if (opts.publicUrl !== undefined && (!PUBLIC_URL_RE.test(opts.publicUrl) || opts.publicUrl.length > PUBLIC_URL_MAX)) {
    return `public URL must be an http(s) URL of at most ${PUBLIC_URL_MAX} characters without spaces, quotes or backslashes`;
  }
  if (opts.maxUploadBytes !== undefined && opts.maxUploadBytes > IMAGE_SIZE_MAX) {
    return `max upload size must be at most ${IMAGE_SIZE_MAX} bytes (the manifest's size field)`;
  }
  return null;
}

export async function startOtaServer(opts: ServerOptions): Promise<OtaServer> {
  const problem = serverOptionsProblem(opts);
  if (problem) throw new Error(problem);
  mkdirSync(opts.dataDir, { recursive: true });
  const clock = opts.clock ?? systemClock;
  const log = opts.logger ?? pino({ level: "info" });
  const db = openDatabase({ sqlitePath: join(opts.dataDir, "ota.sqlite"), databaseUrl: opts.databaseUrl });
  const opened: Array<() => Promise<void> | void> = [() => void db.close()];
  try {
    return await boot(opts, db, clock, log, opened);
  } catch (e) {
    // Release what was opened (ports, db) so a failed start leaves nothing behind.
    for (const close of opened.reverse()) await close();
    throw e;
  }
}

async function boot(opts: ServerOptions, db: Db, clock: Clock, log: Logger, opened: Array<() => Promise<void> | void>): Promise<OtaServer> {
  const keys = new KeyStore(db, clock);
  if (opts.signingKeyFile) keys.importFile(opts.signingKeyFile);
  const signingKey = keys.ensureActive();
  const host = opts.host ?? "0.0.0.0";
  const limits = { ...DEFAULT_REQUEST_LIMITS, ...opts.requestLimits };
  let bus: OtaBus | null = null;
  let engine: LeaderEngine | null = null;
  const serverSecret = loadJwtSecret(opts.dataDir, process.env, db);
  const pg = db.dialect === "pg";
  const leadership = new Leadership(db, log, `${hostname()}:${process.pid}`);
  // With the embedded broker each replica reaches only the devices connected to it: every replica publishes.
  const fanNotify = pg && !opts.mqttUrl && opts.mqttPort !== null;
  const ctx: Ctx = {
    db, clock, log, keys,
    apiKeys: new ApiKeyStore(db, clock),
    tokens: new TokenService(serverSecret, clock),
    blobs: new BlobStore(opts.dataDir, opts.blobDir),
    config: {
      publicUrl: opts.publicUrl ?? "",
      manifestTtlSeconds: opts.manifestTtlSeconds ?? 24 * 3600,
      cdn: opts.cdn?.enabled ? { ...opts.cdn, base_url: opts.cdn.base_url.replace(/\/$/, ""), fallback_url: opts.cdn.fallback_url?.replace(/\/$/, "") ?? null } : null,
      maxUploadBytes: opts.maxUploadBytes ?? 32 * 1024 * 1024,
      deltas: opts.deltas ?? true,
      defaultTimeoutMinutes: opts.defaultTimeoutMinutes ?? 0,
      devTokenEnabled: opts.devToken ?? false,
      deviceAllowList: opts.deviceAllowList ?? false,
      metadataMaxBytes: limits.metadataMaxBytes,
      distinctApprover: opts.distinctApprover ?? false,
      releaseKeys: opts.releaseKeys ?? [],
      requireReleaseSignature: opts.requireReleaseSignature ?? false,
    },
    // Published after the surrounding transaction, and only if it committed: a notification
    // must never announce an update that was rolled back.
    notify: (deviceId, message) => fanNotify ? pgNotify(db, CHANNELS.device, JSON.stringify({ device_id: deviceId, message })) :
      setImmediate(() => {
        if (!bus || !db.open) return;
        const u = getUpdate(db, message.update_id);
        if (!u || (message.action === "cancel" && u.status !== "cancelled")) return;
        bus.publish(deviceId, message);
      }),
    kick: () => engine?.tick(), // on a follower: passed on to the leader
    credentialsChanged: () => {
      bus?.recheckCredentials();
      if (pg) pgNotify(db, CHANNELS.creds);
    },
  };
  const rateLimits = opts.rateLimits === false ? null : { ...DEFAULT_RATE_LIMITS, ...opts.rateLimits };
  engine = new LeaderEngine(ctx, opts.promotionGates ?? [], leadership, () => pg && pgNotify(db, CHANNELS.kick));

  if (opts.mqttUrl) {
    bus = await connectExternalBroker(ctx, { url: opts.mqttUrl, username: opts.mqttUsername, password: opts.mqttPassword, provisioning: opts.mqttProvisioning, serverSecret, isLeader: () => leadership.check() });
  }
  else if (opts.mqttPort !== null) bus = await startEmbeddedBroker(ctx, opts.mqttPort ?? 1883, host, limits, opts.tls ?? null);
  if (bus) opened.push(() => bus!.close());

  const manual = clock instanceof ManualClock;
  const hub = new EventHub(db);
  const webhooks = new LeaderWebhooks(db, clock, log, { ...DISPATCH_DEFAULTS, useTimers: !manual, ...opts.webhooks }, leadership);
  const events: EventsRuntime = { hub, webhooks, keepAliveMs: opts.sseKeepAliveMs ?? 15_000, allowHttpWebhooks: opts.allowHttpWebhooks ?? false };
  const pruner = new RetentionPruner(db, clock, log, opts.eventRetentionDays ?? 30);
  const stopDispatch = webhooks.start(hub);
  opened.push(() => (stopDispatch(), webhooks.close()));
  // PostgreSQL: what other replicas record, notify, revoke or ask the engine for reaches this one.
  const listener = opts.databaseUrl && pg ? await listenToReplicas(opts.databaseUrl, log, { hub, engine, bus: () => bus }) : null;
  if (listener) opened.push(() => listener.close());

  const https = opts.tls ? { cert: opts.tls.cert, key: opts.tls.key, ...clientCertOptions(opts.tls.clientCa) } : null;
  const scheme = https ? "https" : "http";
  let draining = false;
  // /metrics without credentials only on a loopback listener, where no one else can reach it.
  const metrics = { token: opts.metricsToken ?? null, open: opts.metricsOpen ?? isLoopbackHost(host) };
  const mqttInfo = () => ({ url: bus?.url ?? null, connected: bus ? bus.connected() : null });
  const app = await buildApp({ ctx, engine, mqttInfo, events, draining: () => draining, leader: () => leadership.check() }, log, { limits, rateLimits, https, metrics });
  opened.push(() => app.close());
  opts.extraRoutes?.(app);
  await app.listen({ port: opts.port ?? 8221, host });
  const port = (app.server.address() as AddressInfo).port;
  ctx.config.publicUrl = (opts.publicUrl ?? `${scheme}://localhost:${port}`).replace(/\/$/, "");
  ctx.config.publicUrlConfigured = opts.publicUrl !== undefined;

  let authApp: FastifyInstance | null = null;
  let authUrl: string | null = null;
  if (ctx.config.devTokenEnabled && opts.authPort !== null) {
    // The HOWTO fetches dev tokens from a separate auth service on 8202; it listens on loopback only, whatever --host says.
    authApp = Fastify({ loggerInstance: log as unknown as FastifyBaseLogger, ...fastifyLimits(limits), ...(https ? { https } : {}) }) as unknown as FastifyInstance;
    installErrorHandling(authApp, limits);
    if (rateLimits) await installRateLimit(authApp, ctx, rateLimits);
    installAuth(authApp, ctx);
    await devTokenRoute(authApp, ctx);
    opened.push(() => authApp!.close());
    await authApp.listen({ port: opts.authPort ?? 8202, host: "127.0.0.1" });
    authUrl = `${scheme}://localhost:${(authApp.server.address() as AddressInfo).port}`;
  }

  const timer = manual || opts.tickIntervalMs === 0 ? null : setInterval(() => engine!.tickIfLeader(), opts.tickIntervalMs ?? 1000);
  const pruneTimer = manual ? null : setInterval(() => leadership.check() && pruner.run(), 3600_000).unref();
  const unsubscribe = manual ? clock.onChange(() => (engine!.tickIfLeader(), leadership.check() && pruner.maybeRun(), webhooks.wake())) : null;
  // On gaining leadership (at start, or when the leader died): campaigns that were running continue at once.
  leadership.start(1000, () => (engine!.tickIfLeader(), pruner.run(), webhooks.wake()));

  logEvent(log, "ota_server_started", { url: ctx.config.publicUrl, mqtt_url: bus?.url ?? null, auth_url: authUrl ?? undefined, key_id: signingKey.key_id, data_dir: opts.dataDir });
  return {
    url: `${scheme}://localhost:${port}`, port, tls: https !== null, authUrl, mqttUrl: bus?.url ?? null, mqttPort: bus?.port ?? null, ctx, engine, leadership, app, events,
    async close() {
      if (timer) clearInterval(timer);
      leadership.stop();
      if (pruneTimer) clearInterval(pruneTimer);
      unsubscribe?.();
      stopDispatch();
      webhooks.close();
      await drain(app, log, opts.drainMs ?? 30_000, () => (draining = true));
      await authApp?.close();
      await bus?.close();
      await listener?.close();
      db.close();
    },
  };
}
