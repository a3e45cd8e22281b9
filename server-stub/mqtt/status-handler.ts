// Status reports arriving over MQTT on devices/{id}/ota/status: same body and rules
// as the HTTP call, plus update_id. The broker ACL guarantees a device only
// publishes under its own id, so the topic's id is trusted.
import { Ajv } from "ajv";
import { mqttStatusReportSchema, type MqttStatusReport } from "../../device/protocol";
import { ApiError } from "../api-error";
import type { Ctx } from "../context";
import { logEvent } from "../log";
import { getUpdate } from "../model/updates";
import { nulStringPath } from "../nul-strings";
import { reportStatus } from "../services/status-reports";

const validate = new Ajv({ allErrors: false, strict: false }).compile<MqttStatusReport>(mqttStatusReportSchema);

export function handleMqttStatus(ctx: Ctx, deviceId: string, payload: Buffer): void {
  let body: unknown;
  try {
    body = JSON.parse(payload.toString("utf8"));
  } catch {
    logEvent(ctx.log, "mqtt_status_rejected", { device_id: deviceId, reason: "invalid_json" }, "warn");
    return;
  }
  if (!validate(body)) {
    logEvent(ctx.log, "mqtt_status_rejected", { device_id: deviceId, reason: validate.errors?.[0]?.message ?? "invalid" }, "warn");
    return;
  }
  if (nulStringPath(body, "payload")) {
    logEvent(ctx.log, "mqtt_status_rejected", { device_id: deviceId, reason: "NUL_CHARACTER" }, "warn");
    return;
  }
  const u = getUpdate(ctx.db, body.update_id);
  if (!u || u.device_id !== deviceId) {
    logEvent(ctx.log, "mqtt_status_rejected", { device_id: deviceId, update_id: body.update_id, reason: "unknown_update_for_device" }, "warn");
    return;
  }
  const { update_id, ...report } = body;
  try {
    reportStatus(ctx, update_id, report, "mqtt");
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    logEvent(ctx.log, "mqtt_status_rejected", { device_id: deviceId, update_id, reason: e.code }, "warn");
  }
}
