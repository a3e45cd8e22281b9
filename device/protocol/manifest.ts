// Signed update manifest and the envelope that carries it (see README.md).
import { canonicalBytes } from "./canonical";

export const MANIFEST_VERSION = 1;
export const SIGNATURE_ALGORITHM = "ed25519";

export const UPDATE_PRIORITIES = ["low", "normal", "high", "critical", "emergency"] as const;
export type UpdatePriority = (typeof UPDATE_PRIORITIES)[number];

/** A patch that rebuilds this manifest's image from the device's running one (DELTA.md). */
export interface DeltaOffer {
  /** SHA-256 of the image the patch starts from: the running slot's image, as the device reported it. */
  base_sha256: string;
  patch_url: string;
  patch_size: number;
  patch_sha256: string;
}

export interface UpdateManifest {
  manifest_version: number;
  update_id: string;
  device_id: string;
  firmware_id: string;
  version: string;
  /** Image size in bytes. */
  size: number;
  /** SHA-256 of the whole file, lowercase hex. */
  sha256: string;
  device_model: string | null;
  min_hardware_version: string | null;
  max_hardware_version: string | null;
  /** esp_image_header_t.chip_id, or null for images that are not ESP app images. */
  chip_id: number | null;
  /** esp_app_desc_t.secure_version (0 for non-ESP images). */
  secure_version: number;
  /** Where to fetch the image: a CDN when the server has one. */
  download_url: string;
  /** Where to fetch it when download_url fails (the origin server, or the CDN's fallback); null without a CDN. Both are
   * covered by the signature, and the bytes by sha256, so neither URL can change what is installed. */
  fallback_url: string | null;
  /** ISO 8601 UTC, e.g. "2025-09-26T10:00:00.000Z". */
  issued_at: string;
  expires_at: string;
  /** True when the server deliberately sends an older version (rollback); the device must not apply downgrade protection to it. */
  rollback: boolean;
  mandatory: boolean;
  priority: UpdatePriority;
  pre_update_commands: string[];
  post_update_commands: string[];
  /** The firmware team's release signature over releaseSigningBytes (release.ts) of this image; null when the
   * upload carried none. Signed by the server with the rest, so it cannot be swapped in transit. */
  release_signature: string | null;
  /** Which release key made it. */
  release_key_id: string | null;
  /** A delta the device may apply instead of downloading the image; absent or null: the full image only.
   * `size`, `sha256` and `download_url` always describe the full image, the fallback. */
  delta?: DeltaOffer | null;
}

export interface SignedUpdateEnvelope {
  update_available: true;
  manifest: UpdateManifest;
  /** base64 of the 64-byte ed25519 detached signature over canonicalBytes(manifest). */
  signature: string;
  /** Which server key signed it (GET /api/v1/keys). */
  key_id: string;
  /** Always "ed25519". */
  signature_alg: typeof SIGNATURE_ALGORITHM;
}

export interface NoUpdateEnvelope {
  update_available: false;
}

/** Added to either answer: the server's current key list version, so a device behind it fetches the list. */
export interface KeyListHint {
  key_list_version?: number;
}

export type AvailableUpdatesResponse = (SignedUpdateEnvelope | NoUpdateEnvelope) & KeyListHint;

/** The bytes the signature covers. */
export function manifestSigningBytes(manifest: UpdateManifest): Uint8Array {
  return canonicalBytes(manifest);
}

/** True when `nowMs` is within [issued_at, expires_at]; a small skew allowance is the caller's choice. */
export function isManifestCurrent(manifest: UpdateManifest, nowMs: number, skewMs = 0): boolean {
  const issued = Date.parse(manifest.issued_at);
  const expires = Date.parse(manifest.expires_at);
  if (Number.isNaN(issued) || Number.isNaN(expires)) return false;
  return nowMs + skewMs >= issued && nowMs - skewMs <= expires;
}
