// A device's health reports (device/protocol/health.ts): POST by the device, GET by operators.
import type { FastifyInstance } from "fastify";
import { HEALTH_REPORT_MAX_BYTES, healthReportSchema, ROUTES, type HealthReport } from "../../device/protocol";
import { badRequest, notFound } from "../api-error";
import { principalOf } from "../auth/hook";
import { assertDeviceScope, DEVICE_FACING, READERS } from "../auth/principal";
import { logEvent } from "../log";
import { assertDeviceId, getDevice } from "../model/devices";
import { healthReportsForDevice, storeHealthReport } from "../model/health-reports";
import { getUpdate } from "../model/updates";
import { anyObject, authErrors, idParam, type AppDeps } from "./common";

const devParam = idParam("device_id");

export async function deviceHealthRoutes(app: FastifyInstance, { ctx }: AppDeps) {
  app.post(ROUTES.deviceHealth, {
    config: { roles: DEVICE_FACING },
    bodyLimit: HEALTH_REPORT_MAX_BYTES,
    schema: { tags: ["device-facing"], params: devParam, body: healthReportSchema, response: { 200: anyObject, ...authErrors } },
  }, async (req) => {
    const { device_id } = req.params as { device_id: string };
    assertDeviceId(device_id);
    assertDeviceScope(principalOf(req), device_id);
    if (!getDevice(ctx.db, device_id)) throw notFound("device", device_id);
    const r = req.body as HealthReport;
    if (r.update_id) {
      const u = getUpdate(ctx.db, r.update_id);
      if (!u || u.device_id !== device_id) throw badRequest(`update ${r.update_id} is not an update of ${device_id}`, "UNKNOWN_UPDATE");
    }
    const stored = storeHealthReport(ctx.db, device_id, r, ctx.clock.now());
    if (stored && (r.crash_reboots > 0 || Object.values(r.checks ?? {}).includes(false))) {
      logEvent(ctx.log, "device_unhealthy", { device_id, update_id: r.update_id ?? undefined, crash_reboots: r.crash_reboots, reset_reason: r.reset_reason }, "warn");
    }
    if (stored) ctx.kick();
    return { accepted: stored, duplicate: !stored };
  });

  app.get(ROUTES.deviceHealth, {
    config: { roles: READERS },
    schema: { tags: ["devices"], params: devParam, response: { 200: anyObject, ...authErrors } },
  }, async (req) => {
    const { device_id } = req.params as { device_id: string };
    if (!getDevice(ctx.db, device_id)) throw notFound("device", device_id);
    return { device_id, reports: healthReportsForDevice(ctx.db, device_id, 50) };
  });
}
