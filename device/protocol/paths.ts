// REST paths of the OTA service (the HOWTO's, verbatim). The server registers ROUTES as its fastify route patterns;
// clients (the device agent, the fleet, the demo, benches, tests) build concrete paths with the builders below,
// which %-encode every path parameter and query value. No URL or URLSearchParams: XS has neither.

export const API_PREFIX = "/api/v1";

/** fastify route patterns, by name. */
export const ROUTES = {
  health: "/health",
  ready: "/ready",
  metrics: "/metrics",
  openApi: "/docs/openapi.json",
  devToken: "/api/v1/auth/dev-token",
  apiKeys: "/api/v1/auth/api-keys",
  apiKey: "/api/v1/auth/api-keys/:key_id",
  whoami: "/api/v1/auth/whoami",
  devices: "/api/v1/devices",
  device: "/api/v1/devices/:device_id",
  availableUpdates: "/api/v1/devices/:device_id/available-updates",
  deviceUpdate: "/api/v1/devices/:device_id/update",
  deviceUpdates: "/api/v1/devices/:device_id/updates",
  deviceRollback: "/api/v1/devices/:device_id/rollback",
  deviceRevoke: "/api/v1/devices/:device_id/revoke",
  deviceHealth: "/api/v1/devices/:device_id/health",
  bulkUpdate: "/api/v1/devices/bulk/update",
  firmwareList: "/api/v1/firmware",
  firmware: "/api/v1/firmware/:firmware_id",
  firmwareDownload: "/api/v1/firmware/:firmware_id/download",
  firmwarePatch: "/api/v1/firmware/:firmware_id/patches/:base_sha256",
  compatibilityCheck: "/api/v1/firmware/:firmware_id/compatibility-check",
  update: "/api/v1/updates/:update_id",
  updateStatus: "/api/v1/updates/:update_id/status",
  updateCancel: "/api/v1/updates/:update_id/cancel",
  updateRetry: "/api/v1/updates/:update_id/retry",
  campaigns: "/api/v1/campaigns",
  campaign: "/api/v1/campaigns/:campaign_id",
  campaignDevices: "/api/v1/campaigns/:campaign_id/devices",
  campaignApprove: "/api/v1/campaigns/:campaign_id/approve",
  campaignStart: "/api/v1/campaigns/:campaign_id/start",
  campaignPause: "/api/v1/campaigns/:campaign_id/pause",
  campaignCancel: "/api/v1/campaigns/:campaign_id/cancel",
  campaignRollback: "/api/v1/campaigns/:campaign_id/rollback",
  campaignPreview: "/api/v1/campaigns/:campaign_id/preview",
  groups: "/api/v1/groups",
  group: "/api/v1/groups/:name",
  groupDevices: "/api/v1/groups/:name/devices",
  groupDevice: "/api/v1/groups/:name/devices/:device_id",
  keys: "/api/v1/keys",
  keyRotate: "/api/v1/keys/rotate",
  keyRetire: "/api/v1/keys/:key_id/retire",
  keyList: "/api/v1/keys/key-list",
  stats: "/api/v1/stats",
  campaignStats: "/api/v1/stats/campaigns/:campaign_id",
  events: "/api/v1/events",
  webhooks: "/api/v1/webhooks",
  webhook: "/api/v1/webhooks/:webhook_id",
  webhookDeliveries: "/api/v1/webhooks/:webhook_id/deliveries",
} as const;

export type RouteName = keyof typeof ROUTES;

/** Query values: undefined and null are left out; numbers and booleans are written as JSON writes them. */
export type QueryValue = string | number | boolean | null | undefined;

/** `ROUTES[name]` with each `:param` replaced by its %-encoded value; throws when one is missing or empty. */
export function routePath(name: RouteName, params: Readonly<Record<string, string>> = {}, query?: Readonly<Record<string, QueryValue>>): string {
  const path = ROUTES[name].replace(/:([a-z0-9_]+)/g, (_m, key: string) => {
    const value = params[key];
    if (typeof value !== "string" || value === "") throw new Error(`path ${ROUTES[name]} needs a non-empty ${key}`);
    return encodeURIComponent(value);
  });
  return path + queryString(query);
}

/** "?a=1&b=x%20y" from the defined values, "" when there are none. */
export function queryString(query?: Readonly<Record<string, QueryValue>>): string {
  if (!query) return "";
  const parts: string[] = [];
  for (const key of Object.keys(query)) {
    const value = query[key];
    if (value === undefined || value === null) continue;
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  }
  return parts.length > 0 ? `?${parts.join("&")}` : "";
}

// ---- device-facing ----

/** What a device tells the server about itself when it asks for an update (each one sent is recorded). */
export interface AvailableUpdatesQuery {
  current_version?: string;
  device_model?: string;
  hardware_version?: string;
  chip_id?: number;
  secure_version?: number;
  /** SHA-256 of the running slot's image: the server offers a delta from it when it has one. */
  running_sha256?: string;
}

export const availableUpdatesPath = (deviceId: string, query: AvailableUpdatesQuery = {}) =>
  routePath("availableUpdates", { device_id: deviceId }, { ...query });
export const updateStatusPath = (updateId: string) => routePath("updateStatus", { update_id: updateId });
export const deviceHealthPath = (deviceId: string) => routePath("deviceHealth", { device_id: deviceId });
export const firmwareDownloadPath = (firmwareId: string) => routePath("firmwareDownload", { firmware_id: firmwareId });
export const firmwarePatchPath = (firmwareId: string, baseSha256: string) => routePath("firmwarePatch", { firmware_id: firmwareId, base_sha256: baseSha256 });

// ---- operator-facing ----

export const devicePath = (deviceId: string) => routePath("device", { device_id: deviceId });
export const deviceUpdatePath = (deviceId: string) => routePath("deviceUpdate", { device_id: deviceId });
export const deviceUpdatesPath = (deviceId: string, query?: { limit?: number; offset?: number }) =>
  routePath("deviceUpdates", { device_id: deviceId }, query);
export const deviceRollbackPath = (deviceId: string) => routePath("deviceRollback", { device_id: deviceId });
export const firmwarePath = (firmwareId: string) => routePath("firmware", { firmware_id: firmwareId });
export const compatibilityCheckPath = (firmwareId: string) => routePath("compatibilityCheck", { firmware_id: firmwareId });
export const updatePath = (updateId: string) => routePath("update", { update_id: updateId });
export const updateCancelPath = (updateId: string) => routePath("updateCancel", { update_id: updateId });
export const updateRetryPath = (updateId: string) => routePath("updateRetry", { update_id: updateId });
export const campaignPath = (campaignId: string) => routePath("campaign", { campaign_id: campaignId });
export const campaignDevicesPath = (campaignId: string) => routePath("campaignDevices", { campaign_id: campaignId });

/** The operator actions on a campaign: POST /api/v1/campaigns/{id}/{action}. */
export const CAMPAIGN_ACTIONS = ["approve", "start", "pause", "cancel", "rollback", "preview"] as const;
export type CampaignAction = (typeof CAMPAIGN_ACTIONS)[number];
const CAMPAIGN_ACTION_ROUTES: Record<CampaignAction, RouteName> = {
  approve: "campaignApprove", start: "campaignStart", pause: "campaignPause", cancel: "campaignCancel", rollback: "campaignRollback", preview: "campaignPreview",
};
export const campaignActionPath = (campaignId: string, action: CampaignAction) =>
  routePath(CAMPAIGN_ACTION_ROUTES[action], { campaign_id: campaignId });
export const campaignStatsPath = (campaignId: string) => routePath("campaignStats", { campaign_id: campaignId });
export const groupPath = (name: string) => routePath("group", { name });
export const groupDevicesPath = (name: string) => routePath("groupDevices", { name });
export const groupDevicePath = (name: string, deviceId: string) => routePath("groupDevice", { name, device_id: deviceId });
export const webhookPath = (webhookId: string) => routePath("webhook", { webhook_id: webhookId });
export const webhookDeliveriesPath = (webhookId: string, query?: { limit?: number; offset?: number }) =>
  routePath("webhookDeliveries", { webhook_id: webhookId }, query);
/** GET /api/v1/events; `type` is one prefix or several, comma-separated. */
export const eventsPath = (query?: { after?: number; limit?: number; campaign_id?: string; device_id?: string; type?: string }) =>
  routePath("events", {}, query);
export const keyRetirePath = (keyId: string) => routePath("keyRetire", { key_id: keyId });
