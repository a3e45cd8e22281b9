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

/** Transport refusals. The device logs them (`<code>: <detail>`) and never reports them in a status body: it refused
 * to talk to the server that would receive it. A download from another host that fails this way ends, after its
 * retries, as DOWNLOAD_FAILED with the refusal in its message. */
export const TLS_ERROR_CODES = [
  "TLS_REQUIRED", // an http:// or mqtt:// URL while the device has pinned CAs
  "TLS_UNTRUSTED_CA", // the server's chain does not end at a pinned CA
  "TLS_HOSTNAME_MISMATCH", // the certificate does not name the host the URL names
  "TLS_CERT_EXPIRED", // a certificate of the chain is expired (or not valid yet)
  "TLS_CERT_REJECTED", // the certificate check failed and the TLS stack does not say which (ESP32: CA, name or expiry)
  "TLS_HANDSHAKE_FAILED", // any other TLS failure (protocol, cipher, a reset during the handshake)
] as const;

export type TlsErrorCode = (typeof TLS_ERROR_CODES)[number];

export function isDeviceErrorCode(code: string): code is DeviceErrorCode {
  return (DEVICE_ERROR_CODES as readonly string[]).includes(code);
}
