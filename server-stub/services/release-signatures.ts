// Release signatures on the server: it checks an upload's signature against the release public keys it is
// configured with (it never holds a release private key), stores it with the firmware, and hands it on in every
// manifest. It also keeps the newest signed key list (device/protocol/release.ts) for devices to fetch, accepting
// only one signed by a release key it trusts; the release keys of that list are trusted from then on too.
import nacl from "tweetnacl";
import {
  base64Decode, keyListSigningBytes, releaseSigningBytes, type PublicKeyEntry, type ReleaseStatement, type SignedKeyList,
} from "../../device/protocol";
import { ApiError, badRequest, conflict } from "../api-error";
import type { Ctx } from "../context";
import { logEvent } from "../log";

export interface StoredReleaseSignature {
  release_signature: string | null;
  release_key_id: string | null;
}

const NONE: StoredReleaseSignature = { release_signature: null, release_key_id: null };

/** The release keys of the newest key list (a chain of signatures from a configured key vouches for them), or the
 * configured ones before the first list: a key a list retired is refused here as on the devices. */
export function trustedReleaseKeys(ctx: Ctx): PublicKeyEntry[] {
  return currentKeyList(ctx)?.key_list.release_keys ?? ctx.config.releaseKeys;
}

/** Parses the `release_signature` upload part (ota-sign's output) and checks it covers `statement`. */
export function checkReleaseSignature(ctx: Ctx, text: string | undefined, statement: ReleaseStatement): StoredReleaseSignature {
  if (text === undefined) {
    if (ctx.config.requireReleaseSignature) throw badRequest("this server accepts only firmware with a release signature (multipart part release_signature)", "RELEASE_SIGNATURE_REQUIRED");
    return NONE;
  }
  let doc: { key_id?: unknown; signature?: unknown };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    throw badRequest("release_signature is not JSON (the file `ota-sign sign` writes)", "RELEASE_SIGNATURE_INVALID");
  }
  if (typeof doc !== "object" || doc === null || typeof doc.key_id !== "string" || typeof doc.signature !== "string") {
    throw badRequest("release_signature needs key_id and signature strings", "RELEASE_SIGNATURE_INVALID");
  }
  const key = trustedReleaseKeys(ctx).find((k) => k.key_id === doc.key_id);
  if (!key) throw badRequest(`release key ${doc.key_id.slice(0, 128)} is not one this server is configured with`, "RELEASE_SIGNATURE_INVALID");
  if (!verifies(releaseSigningBytes(statement), doc.signature, key.public_key)) {
    throw badRequest(`release signature by ${key.key_id} does not cover this image (sha256 ${statement.sha256}, version ${statement.version}, secure_version ${statement.secure_version}, model ${statement.device_model})`, "RELEASE_SIGNATURE_INVALID");
  }
  return { release_signature: doc.signature, release_key_id: key.key_id };
}

export function currentKeyList(ctx: Ctx): SignedKeyList | null {
  const row = ctx.db.prepare("SELECT document FROM key_list WHERE id = 1").get() as { document: string } | undefined;
  return row ? (JSON.parse(row.document) as SignedKeyList) : null;
}

/** PUT key-list: a newer list signed by a trusted release key replaces the current one. */
export function storeKeyList(ctx: Ctx, doc: SignedKeyList): SignedKeyList {
  const current = currentKeyList(ctx);
  const version = doc.key_list.key_list_version;
  if (current && version <= current.key_list.key_list_version) {
    throw conflict("KEY_LIST_OUTDATED", `key list version ${version} is not newer than the current ${current.key_list.key_list_version}`);
  }
  // The signer must be trusted now, as devices check it.
  const signer = trustedReleaseKeys(ctx).find((k) => k.key_id === doc.key_id);
  if (!signer) throw badRequest(`key list signed by ${doc.key_id}, which is not a current release key`, "KEY_LIST_SIGNATURE_INVALID");
  if (!verifies(keyListSigningBytes(doc.key_list), doc.signature, signer.public_key)) {
    throw badRequest(`key list signature by ${doc.key_id} does not verify`, "KEY_LIST_SIGNATURE_INVALID");
  }
  // As devices check them (device/core/release-keys.ts): release keys are ed25519; a server key's length fits its alg.
  for (const k of doc.key_list.release_keys) {
    if ((k.alg ?? "ed25519") !== "ed25519" || base64Decode(k.public_key).length !== nacl.sign.publicKeyLength) throw badRequest(`release key ${k.key_id} is not a 32-byte ed25519 key`, "KEY_LIST_INVALID");
  }
  for (const k of doc.key_list.server_keys) {
    const length = (k.alg ?? "ed25519") === "ed25519" ? 32 : 65;
    if (base64Decode(k.public_key).length !== length) throw badRequest(`server key ${k.key_id} is not a ${length}-byte ${k.alg ?? "ed25519"} key`, "KEY_LIST_INVALID");
  }
  const stored: SignedKeyList = { key_list: doc.key_list, key_id: doc.key_id, signature: doc.signature };
  ctx.db.prepare("INSERT INTO key_list(id, version, document) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET version = excluded.version, document = excluded.document")
    .run(version, JSON.stringify(stored));
  logEvent(ctx.log, "key_list_published", { key_list_version: version, signed_by: doc.key_id });
  return stored;
}

function verifies(message: Uint8Array, signatureB64: string, publicKeyB64: string): boolean {
  try {
    const signature = base64Decode(signatureB64);
    const publicKey = base64Decode(publicKeyB64);
    return signature.length === nacl.sign.signatureLength && publicKey.length === nacl.sign.publicKeyLength && nacl.sign.detached.verify(message, signature, publicKey);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    return false;
  }
}
