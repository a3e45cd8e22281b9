// Prometheus metrics at /metrics. Request counts and latency are this process's; fleet figures (bytes served,
// campaigns and devices by state) are read from the database on each scrape, so every replica reports the same
// fleet and none has to own the counting.
import { timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { ROUTES } from "../../device/protocol";
import { forbidden, unauthorized } from "../api-error";
import { authenticateOnce } from "../auth/hook";
import { READERS } from "../auth/principal";
import { readCounter } from "../db";
import type { AppDeps } from "./common";

export const METRICS_ROUTE = ROUTES.metrics;
const DOWNLOAD_ROUTES = new Set<string>([ROUTES.firmwareDownload, ROUTES.firmwarePatch]);

export interface MetricsAccess {
  /** A bearer token that may scrape without a user credential (--metrics-token). */
  token: string | null;
  /** No credential needed (the server listens on loopback only). */
  open: boolean;
}

const sameSecret = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/** Records every request, and serves the registry to readers, the metrics token, or anyone when `open`. */
export function installMetrics(app: FastifyInstance, deps: AppDeps, access: MetricsAccess): Registry {
  const { ctx } = deps;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "ota_" });
  const requests = new Counter({ name: "ota_http_requests_total", help: "HTTP requests by route template and status", labelNames: ["method", "route", "status"], registers: [registry] });
  const latency = new Histogram({
    name: "ota_http_request_duration_seconds", help: "HTTP request duration (downloads: until the last byte)", labelNames: ["method", "route"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry],
  });
  let activeDownloads = 0;
  new Gauge({ name: "ota_active_downloads", help: "Firmware and patch downloads in flight in this process", registers: [registry], collect() { this.set(activeDownloads); } });
  new Counter({
    name: "ota_bytes_served_total", help: "Firmware and patch bytes served (all replicas)", labelNames: ["kind"], registers: [registry],
    collect() {
      const delta = readCounter(ctx.db, "bytes_served_delta");
      this.reset();
      this.inc({ kind: "full" }, readCounter(ctx.db, "bytes_served") - delta);
      this.inc({ kind: "delta" }, delta);
    },
  });
  new Gauge({
    name: "ota_campaigns", help: "Campaigns by status", labelNames: ["status"], registers: [registry],
    collect() {
      this.reset();
      for (const r of ctx.db.prepare("SELECT status, COUNT(*) AS n FROM campaigns GROUP BY status").all() as { status: string; n: number }[]) this.set({ status: r.status }, r.n);
    },
  });
  new Gauge({
    name: "ota_devices", help: "Devices by the status of their latest update (none: never offered one)", labelNames: ["state"], registers: [registry],
    collect() {
      this.reset();
      const rows = ctx.db.prepare(
        `SELECT COALESCE((SELECT u.status FROM updates u WHERE u.device_id = d.device_id ORDER BY u.created_at DESC, u.rowid DESC LIMIT 1), 'none') AS state, COUNT(*) AS n
         FROM devices d GROUP BY state`,
      ).all() as { state: string; n: number }[];
      for (const r of rows) this.set({ state: r.state }, r.n);
    },
  });
  // Asked at each scrape: leadership moves when a replica dies (cluster/leadership.ts).
  new Gauge({ name: "ota_engine_leader", help: "1 when this process runs the campaign engine", registers: [registry], collect() { this.set(deps.leader?.() === false ? 0 : 1); } });

  const routeOf = (req: FastifyRequest) => req.routeOptions.url ?? "unmatched"; // templates only: bounded label values
  app.addHook("onRequest", async (req, reply) => {
    if (!DOWNLOAD_ROUTES.has(routeOf(req))) return;
    activeDownloads++;
    reply.raw.once("close", () => activeDownloads--); // finished or cut off
  });
  app.addHook("onResponse", async (req, reply) => {
    const route = routeOf(req);
    requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    latency.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  app.get(METRICS_ROUTE, {
    config: { public: true }, // checked below: a reader's credential or the metrics token
    schema: { tags: ["health"], description: "Prometheus metrics (text format). A viewer/operator/admin credential or `Authorization: Bearer <metrics token>`." },
  }, async (req, reply) => {
    if (!access.open) {
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
      if (!(access.token && bearer && sameSecret(bearer, access.token))) {
        const p = authenticateOnce(ctx, req);
        if (!p) throw unauthorized();
        if (!READERS.includes(p.role)) throw forbidden(`role ${p.role} may not read metrics`);
      }
    }
    reply.header("Content-Type", registry.contentType);
    return registry.metrics();
  });
  return registry;
}
