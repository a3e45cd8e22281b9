// Signed update manifest and the envelope that carries it (see README.md).
import { canonicalBytes } from "./canonical";

export const MANIFEST_VERSION = 1;
/** The algorithm of the legacy single `signature` (devices from before `signatures` know only this one). */
export const SIGNATURE_ALGORITHM = "ed25519";

/** Manifest signature algorithms: ed25519 (RFC 8032), and ECDSA over P-256 with SHA-256 (FIPS 186-4), its signature
 * the 64 bytes r || s (IEEE P1363, not DER) and its public key the 65-byte uncompressed point 0x04 || X || Y. */
export const SIGNATURE_ALGORITHMS = ["ed25519", "ecdsa-p256-sha256"] as const;
export type SignatureAlg = (typeof SIGNATURE_ALGORITHMS)[number];

/** One signature over manifestSigningBytes(manifest). `alg` is a string, not SignatureAlg: a device ignores an
 * algorithm it does not know. */
export interface ManifestSignature {
  key_id: string;
  alg: string;
  /** base64 */
  sig: string;
}

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
  /** One signature per algorithm the server's active keys have (README.md: "Signatures"); a device needs one it
   * accepts, by a key it trusts. Absent from servers that predate it. */
  signatures?: ManifestSignature[];
  /** The ed25519 one again, for devices that predate `signatures`: base64 of the 64-byte detached signature over
   * canonicalBytes(manifest). A device reads it only when `signatures` is absent. */
  signature: string;
  /** Which server key signed it (GET /api/v1/keys). */
  key_id: string;
  /** "ed25519" (a device takes another value as an algorithm it may not know). */
  signature_alg: string;
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
