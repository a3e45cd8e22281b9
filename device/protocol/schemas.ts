// JSON Schemas (draft-07, plain objects) of the device-facing bodies. The server uses
// them as fastify route schemas; a device may use them to validate what it receives.
import { DEVICE_ERROR_CODES } from "./errors";
import {
  CHIP_ID_MAX, COMMAND_NAME_MAX, COMMAND_NAME_PATTERN, COMMANDS_MAX_COUNT, DEVICE_ID_MAX, DEVICE_MODEL_MAX, DOWNLOAD_URL_MAX,
  ERROR_CODE_MAX, ERROR_MESSAGE_MAX, FIRMWARE_ID_MAX, HARDWARE_VERSION_MAX, HEALTH_ENTRIES_MAX, HEALTH_NAME_MAX, HEALTH_NAME_PATTERN, IMAGE_SIZE_MAX, KEY_ID_MAX, KEY_LIST_KEYS_MAX, KEY_LIST_VERSION_MAX, SECURE_VERSION_MAX,
  SIGNATURE_ALG_MAX, SIGNATURE_MAX, SIGNATURES_MAX, TIMESTAMP_MAX, UPDATE_ID_MAX, VERSION_MAX, COREDUMP_BACKTRACE_MAX, COREDUMP_TASK_MAX,
} from "./limits";
import { RESET_REASONS } from "./health";
import { SIGNATURE_ALGORITHMS, UPDATE_PRIORITIES } from "./manifest";
import { REPORTABLE_STATUSES } from "./status";
import { OTA_ACTIONS } from "./topics";

const nullableString = (maxLength: number) => ({ type: ["string", "null"], maxLength });
const nonEmpty = (maxLength: number) => ({ type: "string", minLength: 1, maxLength });
const isoTime = nonEmpty(TIMESTAMP_MAX);
const sha256Schema = { type: "string", pattern: "^[0-9a-f]{64}$" };
const u32Schema = { type: "integer", minimum: 0, maximum: 0xffffffff };

/** A list of pre- or post-update command names, as request bodies and manifests carry it. */
export const commandListSchema = {
  type: "array",
  maxItems: COMMANDS_MAX_COUNT,
  items: { type: "string", minLength: 1, maxLength: COMMAND_NAME_MAX, pattern: COMMAND_NAME_PATTERN },
};

export const errorCodeSchema = {
  type: ["string", "null"],
  // Known codes are listed in errors.ts; unknown upper-case codes are accepted so that a newer agent can add some.
  pattern: `^[A-Z][A-Z0-9_]{0,${ERROR_CODE_MAX - 1}}$`,
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
    error_message: nullableString(ERROR_MESSAGE_MAX),
    timestamp: nullableString(TIMESTAMP_MAX),
    sequence: { type: ["integer", "null"], minimum: 0, maximum: 9007199254740991 },
    // The versions the device ran before and after, as it knows them (completed / rolled_back reports).
    from_version: nullableString(VERSION_MAX),
    to_version: nullableString(VERSION_MAX),
    reason: nullableString(ERROR_MESSAGE_MAX),
    deferred_until: nullableString(TIMESTAMP_MAX),
    // How the image is coming (the first "downloading" report): a delta, or the full image and why not a delta.
    delivery: { type: ["string", "null"], enum: ["delta", "full", null] },
    delivery_note: nullableString(ERROR_MESSAGE_MAX),
    // rolled_back: how the rejected image ended (status.ts).
    reset_reason: { type: ["string", "null"], enum: [...RESET_REASONS, null] },
    coredump: {
      type: ["object", "null"],
      additionalProperties: false,
      required: ["task", "pc", "cause", "backtrace", "backtrace_corrupted"],
      properties: {
        task: { type: "string", maxLength: COREDUMP_TASK_MAX },
        pc: u32Schema,
        cause: { type: ["integer", "null"], minimum: 0, maximum: 0xffffffff },
        backtrace: { type: "array", maxItems: COREDUMP_BACKTRACE_MAX, items: u32Schema },
        backtrace_corrupted: { type: "boolean" },
      },
    },
  },
};

export const mqttStatusReportSchema = {
  ...statusReportSchema,
  required: ["update_id", "status"],
  properties: { ...statusReportSchema.properties, update_id: nonEmpty(UPDATE_ID_MAX) },
};

export const manifestSchema = {
  type: "object",
  additionalProperties: false,
  required: [
    "manifest_version", "update_id", "device_id", "firmware_id", "version", "size", "sha256", "device_model",
    "min_hardware_version", "max_hardware_version", "chip_id", "secure_version", "download_url", "issued_at",
    "fallback_url", "expires_at", "rollback", "mandatory", "priority", "pre_update_commands", "post_update_commands", "release_signature",
    "release_key_id",
  ],
  properties: {
    manifest_version: { type: "integer", const: 1 },
    update_id: nonEmpty(UPDATE_ID_MAX),
    device_id: nonEmpty(DEVICE_ID_MAX),
    firmware_id: nonEmpty(FIRMWARE_ID_MAX),
    version: nonEmpty(VERSION_MAX),
    size: { type: "integer", minimum: 1, maximum: IMAGE_SIZE_MAX },
    sha256: sha256Schema,
    device_model: { type: ["string", "null"], minLength: 1, maxLength: DEVICE_MODEL_MAX },
    min_hardware_version: { type: ["string", "null"], minLength: 1, maxLength: HARDWARE_VERSION_MAX },
    max_hardware_version: { type: ["string", "null"], minLength: 1, maxLength: HARDWARE_VERSION_MAX },
    chip_id: { type: ["integer", "null"], minimum: 0, maximum: CHIP_ID_MAX },
    secure_version: { type: "integer", minimum: 0, maximum: SECURE_VERSION_MAX },
    download_url: { type: "string", minLength: 1, maxLength: DOWNLOAD_URL_MAX, pattern: "^https?://[^\\s]+$" },
    fallback_url: { type: ["string", "null"], minLength: 1, maxLength: DOWNLOAD_URL_MAX, pattern: "^https?://[^\\s]+$" },
    issued_at: isoTime,
    expires_at: isoTime,
    rollback: { type: "boolean" },
    mandatory: { type: "boolean" },
    priority: { type: "string", enum: [...UPDATE_PRIORITIES] },
    pre_update_commands: commandListSchema,
    post_update_commands: commandListSchema,
    release_signature: { type: ["string", "null"], minLength: 1, maxLength: SIGNATURE_MAX },
    release_key_id: { type: ["string", "null"], minLength: 1, maxLength: KEY_ID_MAX },
    delta: {
      type: ["object", "null"],
      additionalProperties: false,
      required: ["base_sha256", "patch_url", "patch_size", "patch_sha256"],
      properties: {
        base_sha256: sha256Schema,
        patch_url: { type: "string", minLength: 1, maxLength: DOWNLOAD_URL_MAX, pattern: "^https?://[^\\s]+$" },
        patch_size: { type: "integer", minimum: 1, maximum: IMAGE_SIZE_MAX },
        patch_sha256: sha256Schema,
      },
    },
  },
};

export const availableUpdatesResponseSchema = {
  type: "object",
  required: ["update_available"],
  properties: {
    update_available: { type: "boolean" },
    manifest: manifestSchema,
    signature: { type: "string", maxLength: SIGNATURE_MAX },
    key_id: { type: "string", maxLength: KEY_ID_MAX },
    signature_alg: { type: "string", const: "ed25519" },
    signatures: {
      type: "array",
      minItems: 1,
      maxItems: SIGNATURES_MAX,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["key_id", "alg", "sig"],
        properties: { key_id: nonEmpty(KEY_ID_MAX), alg: nonEmpty(SIGNATURE_ALG_MAX), sig: nonEmpty(SIGNATURE_MAX) },
      },
    },
    key_list_version: { type: "integer", minimum: 0, maximum: KEY_LIST_VERSION_MAX },
  },
};

const publicKeyEntrySchema = {
  type: "object",
  additionalProperties: false,
  required: ["key_id", "public_key"],
  // 32-byte ed25519 keys (alg absent or "ed25519") or 65-byte P-256 points; the device checks that length and alg agree.
  properties: {
    key_id: nonEmpty(KEY_ID_MAX),
    public_key: { type: "string", pattern: "^[A-Za-z0-9+/]{43}=$|^[A-Za-z0-9+/]{87}=$" },
    alg: { type: "string", enum: [...SIGNATURE_ALGORITHMS] },
  },
};
const keyEntries = { type: "array", minItems: 1, maxItems: KEY_LIST_KEYS_MAX, items: publicKeyEntrySchema };

/** A signed key list (release.ts), as operators upload it and devices fetch it. */
export const signedKeyListSchema = {
  type: "object",
  additionalProperties: false,
  required: ["key_list", "key_id", "signature"],
  properties: {
    key_list: {
      type: "object",
      additionalProperties: false,
      required: ["key_list_version", "issued_at", "release_keys", "server_keys"],
      properties: {
        key_list_version: { type: "integer", minimum: 1, maximum: KEY_LIST_VERSION_MAX },
        issued_at: isoTime,
        release_keys: keyEntries,
        server_keys: keyEntries,
      },
    },
    key_id: nonEmpty(KEY_ID_MAX),
    signature: nonEmpty(SIGNATURE_MAX),
  },
};

export const otaNotificationSchema = {
  type: "object",
  additionalProperties: false,
  required: ["action", "update_id", "version", "mandatory"],
  properties: {
    action: { type: "string", enum: [...OTA_ACTIONS] },
    update_id: nonEmpty(UPDATE_ID_MAX),
    version: nonEmpty(VERSION_MAX),
    mandatory: { type: "boolean" },
  },
};

const healthMap = (value: Record<string, unknown>) => ({
  type: "object",
  maxProperties: HEALTH_ENTRIES_MAX,
  propertyNames: { maxLength: HEALTH_NAME_MAX, pattern: HEALTH_NAME_PATTERN },
  additionalProperties: value,
  default: {},
});
const count = { type: "integer", minimum: 0, maximum: 0xffffffff };

/** POST /devices/{id}/health (health.ts). */
export const healthReportSchema = {
  type: "object",
  additionalProperties: false,
  required: ["version", "reset_reason", "uptime_s", "crash_reboots"],
  properties: {
    update_id: { type: ["string", "null"], minLength: 1, maxLength: UPDATE_ID_MAX },
    version: nonEmpty(VERSION_MAX),
    reset_reason: { type: "string", enum: [...RESET_REASONS] },
    uptime_s: count,
    free_heap: { ...count, type: ["integer", "null"] },
    min_free_heap: { ...count, type: ["integer", "null"] },
    crash_reboots: count,
    checks: healthMap({ type: "boolean" }),
    metrics: healthMap({ type: "number" }),
    sequence: { type: ["integer", "null"], minimum: 0, maximum: 9007199254740991 },
    timestamp: nullableString(TIMESTAMP_MAX),
  },
};
