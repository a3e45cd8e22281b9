// Release signatures and signed key lists: the trust that does not depend on the server (see README.md,
// "Release signatures"). The firmware team's CI holds the release key offline and signs each image's release
// statement; the device checks it on top of the server's manifest signature, so a compromised server can neither
// push an image the team did not release nor change which keys the device trusts.
import { canonicalBytes } from "./canonical";
import type { UpdateManifest } from "./manifest";

/** Domain separators: a release signature can never pass as a key-list signature, nor either as a manifest's. */
export const RELEASE_PURPOSE = "esp32-ota/release/v1";
export const KEY_LIST_PURPOSE = "esp32-ota/key-list/v1";

/** What a release signature vouches for: these bytes (sha256), as this version, for this model. */
export interface ReleaseStatement {
  /** SHA-256 of the whole image file, lowercase hex. */
  sha256: string;
  version: string;
  /** esp_app_desc_t.secure_version (0 for images that are not ESP app images). */
  secure_version: number;
  /** The model the image is released for; null = any model. */
  device_model: string | null;
}

/** The bytes a release signature covers: canonicalBytes({purpose, sha256, version, secure_version, device_model}). */
export function releaseSigningBytes(s: ReleaseStatement): Uint8Array {
  return canonicalBytes({ purpose: RELEASE_PURPOSE, sha256: s.sha256, version: s.version, secure_version: s.secure_version, device_model: s.device_model });
}

/** The statement a manifest's release signature must cover. */
export function releaseStatementOf(m: UpdateManifest): ReleaseStatement {
  return { sha256: m.sha256, version: m.version, secure_version: m.secure_version, device_model: m.device_model };
}

/** What `ota-sign sign` writes and an upload carries (multipart part `release_signature`). */
export interface ReleaseSignature {
  key_id: string;
  /** base64 of the 64-byte ed25519 signature over releaseSigningBytes(statement). */
  signature: string;
  /** The statement signed, for people and `ota-sign verify`; the server and devices rebuild it from the image. */
  statement?: ReleaseStatement;
}

export interface PublicKeyEntry {
  key_id: string;
  /** base64 of the public key: 32 bytes for ed25519, the 65-byte uncompressed point for ecdsa-p256-sha256. */
  public_key: string;
  /** A SignatureAlg (manifest.ts); absent: ed25519. Release keys are ed25519 only. */
  alg?: string;
}

/** The keys a device trusts, as a numbered document; a device only moves to a higher key_list_version. */
export interface KeyList {
  key_list_version: number;
  issued_at: string;
  /** Keys that sign releases and the next key list. */
  release_keys: PublicKeyEntry[];
  /** Keys that sign the server's manifests. */
  server_keys: PublicKeyEntry[];
}

/** GET /api/v1/keys/key-list: the key list and a release key's signature over keyListSigningBytes(key_list). */
export interface SignedKeyList {
  key_list: KeyList;
  key_id: string;
  signature: string;
}

export function keyListSigningBytes(list: KeyList): Uint8Array {
  return canonicalBytes({
    purpose: KEY_LIST_PURPOSE,
    key_list_version: list.key_list_version,
    issued_at: list.issued_at,
    release_keys: list.release_keys.map(signedEntry),
    server_keys: list.server_keys.map(signedEntry),
  });
}

/** An entry's signed form: `alg` only when the list names one, so the bytes of lists from before it are unchanged. */
function signedEntry(k: PublicKeyEntry) {
  return k.alg === undefined ? { key_id: k.key_id, public_key: k.public_key } : { key_id: k.key_id, public_key: k.public_key, alg: k.alg };
}
