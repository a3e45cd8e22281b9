// Error codes a device reports in status bodies (error_code). The first nine are the
// ones the OTA service HOWTO and the device agent share; the rest cover cases the
// agent can detect that the HOWTO does not name.
export const DEVICE_ERROR_CODES = [
  "DOWNLOAD_FAILED",
  "CHECKSUM_MISMATCH",
  "INSUFFICIENT_SPACE",
  "INCOMPATIBLE_VERSION",
  "SIGNATURE_INVALID",
  "DOWNGRADE_REJECTED",
  "IMAGE_INVALID",
  "SELF_TEST_FAILED",
  "TIMEOUT",
  "MANIFEST_EXPIRED", // manifest expires_at is in the past
  "MANIFEST_INVALID", // manifest does not match the schema or is for another device
  "MANIFEST_REPLAYED", // update id already applied here, or issued before the newest manifest applied here
  "UNKNOWN_KEY", // key_id not in the device's trusted key list
  "RELEASE_SIGNATURE_INVALID", // release-key enforcement: the image's release signature is missing, unknown or wrong
  "SECURE_VERSION_REJECTED", // image secure_version below the device's anti-rollback floor
  "FLASH_WRITE_FAILED",
  "CANCELLED",
  "UNKNOWN_COMMAND", // a pre/post-update command the device has no hook for
  "INTERNAL_ERROR",
] as const;

export type DeviceErrorCode = (typeof DEVICE_ERROR_CODES)[number];

/** Codes for which retrying the same firmware cannot succeed. Not MANIFEST_REPLAYED: a retry is a new update id
 * with a freshly issued manifest, which the device accepts. */
export const NON_RETRYABLE_ERROR_CODES: readonly DeviceErrorCode[] = [
  "INCOMPATIBLE_VERSION",
  "SIGNATURE_INVALID",
  "DOWNGRADE_REJECTED",
  "IMAGE_INVALID",
  "UNKNOWN_KEY",
  "RELEASE_SIGNATURE_INVALID",
  "SECURE_VERSION_REJECTED",
  "UNKNOWN_COMMAND",
];

export function isDeviceErrorCode(code: string): code is DeviceErrorCode {
  return (DEVICE_ERROR_CODES as readonly string[]).includes(code);
}
