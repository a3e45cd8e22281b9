// Every length, count and size bound of the device–server protocol. The server's request schemas, the manifest
// JSON schema and the device's manifest check all read them from here, so the server can never produce a manifest
// the device refuses. Lengths are JavaScript string lengths (UTF-16 code units), as `String.length` counts them.

/** Device ids: also MQTT topic levels (topics.ts). */
export const DEVICE_ID_MAX = 128;
/** Server-made ids ("upd_" + 16 hex digits); the bound leaves room for other servers' ids. */
export const UPDATE_ID_MAX = 64;
/** Firmware ids: "fw_v{version}", or "fw_{model slug}_v{version}" with the slug cut to fit. */
export const FIRMWARE_ID_MAX = 64;
/** Versions: esp_app_desc_t.version is char[32], so 31 characters and a NUL. */
export const VERSION_MAX = 31;
export const DEVICE_MODEL_MAX = 64;
/** Hardware versions (a device's own, and a firmware's min/max range). */
export const HARDWARE_VERSION_MAX = 32;
export const DOWNLOAD_URL_MAX = 1024;
/** Pre- and post-update commands: at most this many names per list, each a hook name of this many characters. */
export const COMMANDS_MAX_COUNT = 16;
export const COMMAND_NAME_MAX = 64;
/** Command names are hook names: plain ASCII, so a name means the same thing to the operator, server and device. */
export const COMMAND_NAME_PATTERN = "^[A-Za-z0-9_.:-]+$";
/** ISO 8601 times ("2025-09-26T10:00:00.000Z" is 24). */
export const TIMESTAMP_MAX = 40;
export const ERROR_CODE_MAX = 64;
export const ERROR_MESSAGE_MAX = 1024;
/** esp_image_header_t.chip_id is a uint16. */
export const CHIP_ID_MAX = 0xffff;
/** esp_app_desc_t.secure_version is a uint32, but eFuse anti-rollback fields are at most 32 (ESP32) or 16 bits. */
export const SECURE_VERSION_MAX = 0xffff;
/** Image size in bytes (the manifest's `size`); slots are far smaller, this only bounds the number. */
export const IMAGE_SIZE_MAX = 0xffffffff;
/** Envelope fields besides the manifest. A base64 ed25519 signature is 88 characters. */
export const KEY_ID_MAX = 128;
export const SIGNATURE_MAX = 200;
/** Entries of an envelope's `signatures` list (one per algorithm the server's keys have), and an algorithm name. */
export const SIGNATURES_MAX = 4;
export const SIGNATURE_ALG_MAX = 32;
/** Keys of each kind (release, server) in a key list. */
export const KEY_LIST_KEYS_MAX = 4;
/** key_list_version: a counter the device only lets go up. */
export const KEY_LIST_VERSION_MAX = 0x7fffffff;
/** Largest signed key-list body the device parses (the worst case is about 1.7 KB). */
export const KEY_LIST_MAX_BYTES = 4096;

/** Health reports: at most this many application checks and metrics, each named by this many characters. */
export const HEALTH_ENTRIES_MAX = 16;
export const HEALTH_NAME_MAX = 32;
/** Check and metric names: plain ASCII, as command names. */
export const HEALTH_NAME_PATTERN = "^[A-Za-z0-9_.:-]+$";
/** A health report body: the server refuses larger ones (the worst case is far below: the test computes it). */
export const HEALTH_REPORT_MAX_BYTES = 2048;

/** A rolled_back report's core dump summary: the task name (esp_core_dump_summary_t.exc_task is 16 bytes with
 * its NUL) and the backtrace entries (exc_bt_info.bt has 16). */
export const COREDUMP_TASK_MAX = 15;
export const COREDUMP_BACKTRACE_MAX = 16;

/** Characters in the download URL that are not the server's public URL: the path with a fully %-encoded id. */
export const DOWNLOAD_PATH_MAX = "/api/v1/firmware//download".length + 3 * FIRMWARE_ID_MAX;
/** The same for a delta's patch_url (also bounded by DOWNLOAD_URL_MAX): the id and the base's SHA-256. */
export const PATCH_PATH_MAX = "/api/v1/firmware//patches/".length + 3 * FIRMWARE_ID_MAX + 64;
/** The server's public URL (the start of every download_url and patch_url) may be at most this long. */
export const PUBLIC_URL_MAX = DOWNLOAD_URL_MAX - Math.max(DOWNLOAD_PATH_MAX, PATCH_PATH_MAX);

/**
 * Largest available-updates body the device parses. The worst case the server can produce — every field at its
 * maximum, the free-text device_model made of characters JSON escapes as \u00XX (6 characters each) — is computed
 * by test/protocol-limits.test.ts (printed by the test); this leaves room above it. 10 KiB since `signatures`
 * (SIGNATURES_MAX entries at their bounds add about 1.6 KB; the worst case is about 9 KB).
 */
export const ENVELOPE_MAX_BYTES = 10240;

export interface ProtocolLimit {
  name: string;
  value: number;
  /** The fields it bounds. */
  fields: string;
}

/** The table device/protocol/README.md lists (a test keeps the two equal). */
export const PROTOCOL_LIMITS: readonly ProtocolLimit[] = [
  { name: "DEVICE_ID_MAX", value: DEVICE_ID_MAX, fields: "device_id (manifest, registration, paths)" },
  { name: "UPDATE_ID_MAX", value: UPDATE_ID_MAX, fields: "manifest update_id, MQTT status update_id" },
  { name: "FIRMWARE_ID_MAX", value: FIRMWARE_ID_MAX, fields: "manifest firmware_id, firmware_id in request bodies" },
  { name: "VERSION_MAX", value: VERSION_MAX, fields: "manifest version, firmware version, current/target/from/to versions" },
  { name: "DEVICE_MODEL_MAX", value: DEVICE_MODEL_MAX, fields: "device_model (manifest, firmware metadata, registration, query)" },
  { name: "HARDWARE_VERSION_MAX", value: HARDWARE_VERSION_MAX, fields: "min/max_hardware_version, a device's hardware_version" },
  { name: "DOWNLOAD_URL_MAX", value: DOWNLOAD_URL_MAX, fields: "manifest download_url, fallback_url, delta.patch_url" },
  { name: "PUBLIC_URL_MAX", value: PUBLIC_URL_MAX, fields: "the server's --public-url, --cdn-url, --cdn-fallback-url (a manifest URL minus its path)" },
  { name: "COMMANDS_MAX_COUNT", value: COMMANDS_MAX_COUNT, fields: "entries in pre_update_commands, post_update_commands" },
  { name: "COMMAND_NAME_MAX", value: COMMAND_NAME_MAX, fields: "each command name (A-Z a-z 0-9 _ . : -)" },
  { name: "TIMESTAMP_MAX", value: TIMESTAMP_MAX, fields: "issued_at, expires_at, report timestamp" },
  { name: "ERROR_CODE_MAX", value: ERROR_CODE_MAX, fields: "report error_code" },
  { name: "ERROR_MESSAGE_MAX", value: ERROR_MESSAGE_MAX, fields: "report error_message" },
  { name: "CHIP_ID_MAX", value: CHIP_ID_MAX, fields: "chip_id" },
  { name: "SECURE_VERSION_MAX", value: SECURE_VERSION_MAX, fields: "secure_version (uploads above it are refused)" },
  { name: "IMAGE_SIZE_MAX", value: IMAGE_SIZE_MAX, fields: "manifest size, delta.patch_size" },
  { name: "KEY_ID_MAX", value: KEY_ID_MAX, fields: "envelope key_id, manifest release_key_id, key-list key ids" },
  { name: "SIGNATURE_MAX", value: SIGNATURE_MAX, fields: "envelope signature, manifest release_signature, key-list signature (base64)" },
  { name: "SIGNATURES_MAX", value: SIGNATURES_MAX, fields: "entries in the envelope's signatures" },
  { name: "SIGNATURE_ALG_MAX", value: SIGNATURE_ALG_MAX, fields: "signature_alg, signatures[].alg, key-list alg" },
  { name: "HEALTH_ENTRIES_MAX", value: HEALTH_ENTRIES_MAX, fields: "entries in a health report's checks, metrics" },
  { name: "HEALTH_NAME_MAX", value: HEALTH_NAME_MAX, fields: "each check or metric name (A-Z a-z 0-9 _ . : -)" },
  { name: "HEALTH_REPORT_MAX_BYTES", value: HEALTH_REPORT_MAX_BYTES, fields: "the whole health report body" },
  { name: "COREDUMP_TASK_MAX", value: COREDUMP_TASK_MAX, fields: "rolled_back report coredump.task" },
  { name: "COREDUMP_BACKTRACE_MAX", value: COREDUMP_BACKTRACE_MAX, fields: "rolled_back report coredump.backtrace entries" },
  { name: "KEY_LIST_KEYS_MAX", value: KEY_LIST_KEYS_MAX, fields: "release_keys, server_keys of a key list" },
  { name: "KEY_LIST_VERSION_MAX", value: KEY_LIST_VERSION_MAX, fields: "key_list_version" },
  { name: "KEY_LIST_MAX_BYTES", value: KEY_LIST_MAX_BYTES, fields: "the whole signed key-list body the device parses" },
  { name: "ENVELOPE_MAX_BYTES", value: ENVELOPE_MAX_BYTES, fields: "the whole available-updates body the device parses" },
];
