import { ROUTES } from "../../device/protocol";
import type { FastifyInstance } from "fastify";
import { SERVICE_VERSION } from "../app";
import type { AppDeps } from "./common";

export async function healthRoutes(app: FastifyInstance, deps: AppDeps) {
  app.get(ROUTES.health, {
    config: { public: true },
    schema: {
      tags: ["health"],
      security: [],
      response: { 200: { type: "object", properties: { status: { type: "string" }, service: { type: "string" }, version: { type: "string" }, time: { type: "string" }, mqtt_url: { type: ["string", "null"] } } } },
    },
  }, async () => {
    deps.ctx.db.prepare("SELECT 1").get(); // the store answers
    return { status: "healthy", service: "ota_service", version: SERVICE_VERSION, time: new Date(deps.ctx.clock.now()).toISOString(), mqtt_url: deps.mqttInfo().url };
  });
}
