// Readiness (/ready): may a load balancer send traffic here now? Unlike /health (the process lives), it checks the
// database with a trivial query and the broker connection, and turns 503 while a shutdown drains downloads.
import type { FastifyInstance } from "fastify";
import { ROUTES } from "../../device/protocol";
import type { AppDeps } from "./common";

export const READY_ROUTE = ROUTES.ready;

type Check = "ok" | "failed" | "disconnected" | "disabled" | "shutting_down";

const readySchema = {
  type: "object",
  properties: {
    status: { type: "string" },
    checks: { type: "object", properties: { database: { type: "string" }, broker: { type: "string" }, server: { type: "string" } } },
    error: { type: "object", properties: { code: { type: "string" }, message: { type: "string" } } },
  },
};

export async function readyRoutes(app: FastifyInstance, deps: AppDeps) {
  app.get(READY_ROUTE, {
    config: { public: true },
    schema: { tags: ["health"], security: [], description: "200 when the database answers and the broker is connected; 503 naming the check that failed.", response: { 200: readySchema, 503: readySchema } },
  }, async (req, reply) => {
    const checks: Record<string, Check> = { database: "ok", broker: "disabled", server: deps.draining?.() ? "shutting_down" : "ok" };
    try {
      deps.ctx.db.prepare("SELECT 1").get();
    } catch (err) {
      req.log.warn({ err }, "ready_database_failed");
      checks.database = "failed";
    }
    const mqtt = deps.mqttInfo();
    if (mqtt.connected != null) checks.broker = mqtt.connected ? "ok" : "disconnected";
    const failed = Object.entries(checks).filter(([, v]) => v !== "ok" && v !== "disabled").map(([k]) => k);
    if (failed.length === 0) return { status: "ready", checks };
    return reply.status(503).send({ status: "not_ready", checks, error: { code: "NOT_READY", message: `not ready: ${failed.join(", ")}` } });
  });
}
