// JSON Schemas (draft-07, plain objects) of the device-facing bodies. The server uses
// them as fastify route schemas; a device may use them to validate what it receives.
import { DEVICE_ERROR_CODES } from "./errors";
import { UPDATE_PRIORITIES } from "./manifest";
import { REPORTABLE_STATUSES } from "./status";
import { OTA_ACTIONS } from "./topics";

const nullableString = (maxLength: number) => ({ type: ["string", "null"], maxLength });
const isoTime = { type: "string", maxLength: 40 };

export const errorCodeSchema = {
  type: ["string", "null"],
  // Known codes are listed in errors.ts; unknown upper-case codes are accepted so that a newer agent can add some.
  pattern: "^[A-Z][A-Z0-9_]{0,63}$",
  examples: [...DEVICE_ERROR_CODES],
};

export const statusReportSchema = {
  type: "object",
  additionalProperties: false,
  required: ["status"],
  properties: {
    status: { type: "string", enum: [...REPORTABLE_STATUSES] },
    progress: { type: ["number", "null"], minimum: 0, maximum: 100 },
    error_code: errorCodeSchema,
    error_message: nullableString(1024),
    timestamp: nullableString(40),
    sequence: { type: ["integer", "null"], minimum: 0, maximum: 9007199254740991 },
    // The versions the device ran before and after, as it knows them (completed / rolled_back reports).
    from_version: nullableString(32),
    to_version: nullableString(32),
  },
};

export const mqttStatusReportSchema = {
  ...statusReportSchema,
  required: ["update_id", "status"],
  properties: { ...statusReportSchema.properties, update_id: { type: "string", minLength: 1, maxLength: 64 } },
};

export const manifestSchema = {
  type: "object",
  additionalProperties: false,
  required: [
    "manifest_version", "update_id", "device_id", "firmware_id", "version", "size", "sha256", "device_model",
    "min_hardware_version", "max_hardware_version", "chip_id", "secure_version", "download_url", "issued_at",
    "expires_at", "rollback", "mandatory", "priority", "pre_update_commands", "post_update_commands",
  ],
  properties: {
    manifest_version: { type: "integer", const: 1 },
    update_id: { type: "string" },
    device_id: { type: "string" },
    firmware_id: { type: "string" },
    version: { type: "string" },
    size: { type: "integer", minimum: 0 },
    sha256: { type: "string", pattern: "^[0-9a-f]{64}$" },
    device_model: { type: ["string", "null"] },
    min_hardware_version: { type: ["string", "null"] },
    max_hardware_version: { type: ["string", "null"] },
    chip_id: { type: ["integer", "null"] },
    secure_version: { type: "integer", minimum: 0 },
    download_url: { type: "string" },
    issued_at: isoTime,
    expires_at: isoTime,
    rollback: { type: "boolean" },
    mandatory: { type: "boolean" },
    priority: { type: "string", enum: [...UPDATE_PRIORITIES] },
    pre_update_commands: { type: "array", items: { type: "string" } },
    post_update_commands: { type: "array", items: { type: "string" } },
  },
};

export const availableUpdatesResponseSchema = {
  type: "object",
  required: ["update_available"],
  properties: {
    update_available: { type: "boolean" },
    manifest: manifestSchema,
    signature: { type: "string" },
    key_id: { type: "string" },
    signature_alg: { type: "string", const: "ed25519" },
  },
};

export const otaNotificationSchema = {
  type: "object",
  additionalProperties: false,
  required: ["action", "update_id", "version", "mandatory"],
  properties: {
    action: { type: "string", enum: [...OTA_ACTIONS] },
    update_id: { type: "string" },
    version: { type: "string" },
    mandatory: { type: "boolean" },
  },
};
