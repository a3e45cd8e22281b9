import { forbidden } from "../api-error";

export const ROLES = ["admin", "operator", "viewer", "device"] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling. Device principals are scoped to exactly one device id. */
export interface Principal {
  role: Role;
  subject: string; // user id, device id or api key name
  via: "jwt" | "api_key" | "client_cert";
  device_id?: string;
}

/** Roles allowed to read / change fleet state. Devices use only the device-facing routes. */
export const READERS: readonly Role[] = ["admin", "operator", "viewer"];
export const WRITERS: readonly Role[] = ["admin", "operator"];
export const ADMINS: readonly Role[] = ["admin"];
export const DEVICE_FACING: readonly Role[] = ["admin", "operator", "device"];

export function assertDeviceScope(p: Principal, deviceId: string): void {
  if (p.role === "device" && p.device_id !== deviceId) throw forbidden(`device credential for ${p.device_id} cannot act for ${deviceId}`);
}
