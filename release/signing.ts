// The firmware team's side of release signatures (device/protocol/release.ts): an offline ed25519 release key,
// the release statement of an image file, its signature, and signed key lists. Used by the ota-sign CLI in CI;
// the server and devices only ever see public keys.
import { createHash } from "node:crypto";
import nacl from "tweetnacl";
import { ESP_IMAGE_MAGIC, inspectImage } from "../esp-image/app-image";
import {
  base64Decode, base64Encode, keyListSigningBytes, parseVersion, releaseSigningBytes, SECURE_VERSION_MAX,
  type KeyList, type PublicKeyEntry, type ReleaseSignature, type ReleaseStatement, type SignedKeyList,
} from "../device/protocol";

/** A release key file: keep it offline (CI secret store), never on the OTA server. */
export interface ReleaseKeyFile extends PublicKeyEntry {
  /** base64 of the 64-byte tweetnacl secret key. */
  secret_key: string;
}

export class SigningError extends Error {}

/** Key ids name the key itself: "rel_" and 16 hex digits of the public key's SHA-256. */
export function releaseKeyId(publicKey: Uint8Array): string {
  return "rel_" + createHash("sha256").update(publicKey).digest("hex").slice(0, 16);
}

export function generateReleaseKey(seed?: Uint8Array): ReleaseKeyFile {
  const pair = seed ? nacl.sign.keyPair.fromSeed(seed) : nacl.sign.keyPair();
  return { key_id: releaseKeyId(pair.publicKey), public_key: base64Encode(pair.publicKey), secret_key: base64Encode(pair.secretKey) };
}

export function parseKeyFile(text: string): ReleaseKeyFile {
  let k: Partial<ReleaseKeyFile>;
  try {
    k = JSON.parse(text) as Partial<ReleaseKeyFile>;
  } catch {
    throw new SigningError("the key file is not JSON (write one with `ota-sign keygen`)");
  }
  if (typeof k.key_id !== "string" || typeof k.public_key !== "string" || typeof k.secret_key !== "string") throw new SigningError("the key file needs key_id, public_key and secret_key");
  const secret = base64Decode(k.secret_key);
  if (secret.length !== nacl.sign.secretKeyLength) throw new SigningError("secret_key is not a 64-byte ed25519 secret key");
  if (base64Encode(nacl.sign.keyPair.fromSecretKey(secret).publicKey) !== k.public_key) throw new SigningError("public_key does not belong to secret_key");
  return k as ReleaseKeyFile;
}

/** "keyId:base64", or the JSON {key_id, public_key} that keygen prints. */
export function parsePublicKey(text: string): PublicKeyEntry {
  const entry = parseKeyEntry(text);
  if (entry.alg) throw new SigningError(`release keys are ed25519 only, not ${entry.alg}: ${text.trim().slice(0, 60)}`);
  return entry;
}

/** A server key for a key list: as parsePublicKey, or keyId:ecdsa-p256-sha256:base64, or the JSON the server's
 * GET /api/v1/keys lists (its `algorithm`), so a list can carry every algorithm the server signs with. */
export function parseServerKey(text: string): PublicKeyEntry {
  return parseKeyEntry(text);
}

const KEY_BYTES: Record<string, number> = { "ed25519": nacl.sign.publicKeyLength, "ecdsa-p256-sha256": 65 };

function parseKeyEntry(text: string): PublicKeyEntry {
  const t = text.trim();
  let entry: PublicKeyEntry | null = null;
  if (t.startsWith("{")) {
    const o = JSON.parse(t) as Partial<PublicKeyEntry> & { algorithm?: string };
    const alg = o.alg ?? o.algorithm ?? "ed25519";
    if (typeof o.key_id === "string" && typeof o.public_key === "string" && typeof alg === "string") entry = withAlg(o.key_id, o.public_key, alg);
  } else {
    const parts = t.split(":");
    if (parts.length === 2 && parts[0]) entry = withAlg(parts[0], parts[1]!, "ed25519");
    else if (parts.length === 3 && parts[0]) entry = withAlg(parts[0], parts[2]!, parts[1]!);
  }
  const length = entry ? KEY_BYTES[entry.alg ?? "ed25519"] : undefined;
  if (!entry || length === undefined || safeLength(entry.public_key) !== length) {
    throw new SigningError(`not a public key (keyId:base64, keyId:ecdsa-p256-sha256:base64 or {"key_id","public_key"}): ${t.slice(0, 60)}`);
  }
  return entry;
}

function withAlg(keyId: string, publicKey: string, alg: string): PublicKeyEntry {
  return alg === "ed25519" ? { key_id: keyId, public_key: publicKey } : { key_id: keyId, public_key: publicKey, alg };
}

/** What the image says about itself (ESP app images) or what the caller says (raw images). */
export function releaseStatement(bytes: Uint8Array, opts: { model: string | null; version?: string; secureVersion?: number }): ReleaseStatement {
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  let version = opts.version;
  let secureVersion = opts.secureVersion ?? 0;
  if (bytes[0] === ESP_IMAGE_MAGIC) {
    // CI does not run on the target chip: check against the image's own chip id and revision, as the server does.
    const chip = { expectedChipId: (bytes[12] ?? 0) | ((bytes[13] ?? 0) << 8), chipRevision: (bytes[15] ?? 0) | ((bytes[16] ?? 0) << 8) };
    const { info, error } = inspectImage(bytes, chip);
    if (error || !info.appDesc) throw new SigningError(`not a valid ESP app image: ${error?.message ?? "no esp_app_desc_t"}`);
    if (version !== undefined && version !== info.appDesc.version) throw new SigningError(`--version ${version} contradicts the image's version ${info.appDesc.version}`);
    if (opts.secureVersion !== undefined && opts.secureVersion !== info.appDesc.secureVersion) throw new SigningError(`--secure-version contradicts the image's ${info.appDesc.secureVersion}`);
    version = info.appDesc.version;
    secureVersion = info.appDesc.secureVersion;
  }
  if (!version || !parseVersion(version)) throw new SigningError("a version is required (--version) for images that are not ESP app images");
  if (!Number.isInteger(secureVersion) || secureVersion < 0 || secureVersion > SECURE_VERSION_MAX) throw new SigningError(`secure_version must be 0..${SECURE_VERSION_MAX}`);
  return { sha256, version, secure_version: secureVersion, device_model: opts.model };
}

export function signRelease(statement: ReleaseStatement, key: ReleaseKeyFile): ReleaseSignature {
  const signature = nacl.sign.detached(releaseSigningBytes(statement), base64Decode(key.secret_key));
  return { key_id: key.key_id, signature: base64Encode(signature), statement };
}

export function verifyRelease(statement: ReleaseStatement, sig: ReleaseSignature, key: PublicKeyEntry): boolean {
  if (sig.key_id !== key.key_id) return false;
  const signature = safeBytes(sig.signature);
  return signature?.length === nacl.sign.signatureLength && nacl.sign.detached.verify(releaseSigningBytes(statement), signature, base64Decode(key.public_key));
}

export function signKeyList(list: KeyList, key: ReleaseKeyFile): SignedKeyList {
  return { key_list: list, key_id: key.key_id, signature: base64Encode(nacl.sign.detached(keyListSigningBytes(list), base64Decode(key.secret_key))) };
}

function safeBytes(b64: string): Uint8Array | null {
  try {
    return base64Decode(b64);
  } catch {
    return null;
  }
}

function safeLength(b64: string): number {
  return safeBytes(b64)?.length ?? -1;
}
