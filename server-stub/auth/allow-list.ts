// Device allow-list mode: only device ids an operator registered (POST /api/v1/devices) may authenticate,
// whatever credential they bring (a device JWT minted elsewhere with the secret, a dev token).
import { ApiError } from "../api-error";
import type { Ctx } from "../context";
import type { Principal } from "./principal";

export function isDeviceRegistered(ctx: Ctx, deviceId: string): boolean {
  return ctx.db.prepare("SELECT 1 FROM devices WHERE device_id = ? AND registered = 1").get(deviceId) !== undefined;
}

/** The principal, or null when allow-list mode refuses its device. */
export function allowListed(ctx: Ctx, p: Principal | null): Principal | null {
  if (!p || p.role !== "device" || !ctx.config.deviceAllowList) return p;
  return isDeviceRegistered(ctx, p.device_id!) ? p : null;
}

export function assertDeviceAllowed(ctx: Ctx, deviceId: string): void {
  if (ctx.config.deviceAllowList && !isDeviceRegistered(ctx, deviceId)) {
    throw new ApiError(403, "DEVICE_NOT_ALLOWED", `device ${deviceId} is not registered, and only registered devices may authenticate (allow-list mode)`);
  }
}
