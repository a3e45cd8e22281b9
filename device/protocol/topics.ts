// MQTT topics and message bodies. Devices may only subscribe and publish under
// devices/{their id}/ (the broker enforces it); the command topic is server-only.
import { DEVICE_ID_MAX } from "./limits";

export const OTA_ACTIONS = ["update_available", "rollback", "cancel"] as const;
export type OtaAction = (typeof OTA_ACTIONS)[number];

/** Published by the server on devices/{id}/ota, QoS 1. */
export interface OtaNotification {
  action: OtaAction;
  update_id: string;
  version: string;
  mandatory: boolean;
}

const DEVICE_ID_RE = new RegExp(`^[A-Za-z0-9._:-]{1,${DEVICE_ID_MAX}}$`);

/** Device ids double as MQTT topic levels, so they must not contain / + # or spaces. */
export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID_RE.test(id);
}

export function otaCommandTopic(deviceId: string): string {
  return `devices/${deviceId}/ota`;
}

export function otaStatusTopic(deviceId: string): string {
  return `devices/${deviceId}/ota/status`;
}

/** Prefix every topic a device may use starts with. */
export function deviceTopicPrefix(deviceId: string): string {
  return `devices/${deviceId}/`;
}

/** Returns the device id for devices/{id}/ota/status, else null. */
export function parseStatusTopic(topic: string): string | null {
  const m = /^devices\/([^/+#]+)\/ota\/status$/.exec(topic);
  return m ? m[1]! : null;
}
