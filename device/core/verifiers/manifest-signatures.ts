// The manifest's signatures (`signatures: [{key_id, alg, sig}]`, or the legacy single ed25519 `signature`) checked
// against the trusted keys with the verifiers of the algorithms this device accepts. One signature by a trusted
// key in an accepted algorithm is enough; one in an algorithm the device does not know is skipped, not an error.
import { base64Decode } from "../../protocol/base64";
import { KEY_ID_MAX, SIGNATURE_ALG_MAX, SIGNATURE_MAX, SIGNATURES_MAX } from "../../protocol/limits";
import type { ManifestSignature, SignedUpdateEnvelope } from "../../protocol/manifest";
import { manifestSigningBytes, SIGNATURE_ALGORITHM } from "../../protocol/manifest";
import type { TrustedKey } from "../config";
import type { SignatureVerifier } from "../ports";
import { UpdateError } from "../update-error";

const isShortString = (v: unknown, max: number) => typeof v === "string" && v.length > 0 && v.length <= max;

/** Shape checks of the envelope's signature fields (parseEnvelope runs them before anything else is believed). */
export function checkSignatureFields(e: Record<string, unknown>): void {
  if (e.signatures !== undefined) {
    const list = e.signatures;
    if (!Array.isArray(list) || list.length === 0 || list.length > SIGNATURES_MAX) {
      throw new UpdateError("MANIFEST_INVALID", `signatures must be a list of 1..${SIGNATURES_MAX} entries`);
    }
    for (const s of list as Record<string, unknown>[]) {
      if (typeof s !== "object" || s === null || !isShortString(s.key_id, KEY_ID_MAX) || !isShortString(s.alg, SIGNATURE_ALG_MAX)) {
        throw new UpdateError("MANIFEST_INVALID", `each signature needs a key_id of 1..${KEY_ID_MAX} and an alg of 1..${SIGNATURE_ALG_MAX} characters`);
      }
      if (!isShortString(s.sig, SIGNATURE_MAX)) throw new UpdateError("SIGNATURE_INVALID", `signature by ${s.key_id as string} is not a string of 1..${SIGNATURE_MAX} characters`);
    }
  } else if (!isShortString(e.signature, SIGNATURE_MAX)) {
    throw new UpdateError("SIGNATURE_INVALID", "envelope has no signature");
  }
  if (e.key_id !== undefined && !isShortString(e.key_id, KEY_ID_MAX)) throw new UpdateError("MANIFEST_INVALID", "key_id is not a short string");
  if (e.signature_alg !== undefined && !isShortString(e.signature_alg, SIGNATURE_ALG_MAX)) throw new UpdateError("MANIFEST_INVALID", "signature_alg is not a short string");
}

/** `signatures` when the server sent it (the legacy fields then only repeat its ed25519 entry), else the legacy one. */
export function signaturesOf(env: SignedUpdateEnvelope): ManifestSignature[] {
  if (env.signatures) return env.signatures;
  if (typeof env.signature !== "string") return [];
  return [{ key_id: env.key_id ?? "", alg: env.signature_alg ?? SIGNATURE_ALGORITHM, sig: env.signature }];
}

/** Throws SIGNATURE_INVALID unless a signature in an accepted algorithm verifies by a trusted key of that
 * algorithm, or UNKNOWN_KEY when no accepted signature names a key this device trusts. */
export function verifyManifestSignatures(env: SignedUpdateEnvelope, keys: readonly TrustedKey[], verifiers: readonly SignatureVerifier[]): void {
  const accepted = signaturesOf(env).filter((s) => verifiers.some((v) => v.alg === s.alg));
  if (accepted.length === 0) {
    const sent = signaturesOf(env).map((s) => s.alg.slice(0, SIGNATURE_ALG_MAX)).join(", ") || "none";
    throw new UpdateError("SIGNATURE_INVALID", `no signature in an algorithm this device accepts (${verifiers.map((v) => v.alg).join(", ")}; sent: ${sent})`);
  }
  let message: Uint8Array;
  try {
    message = manifestSigningBytes(env.manifest);
  } catch (e) {
    throw new UpdateError("SIGNATURE_INVALID", `manifest cannot be canonicalised: ${(e as Error).message}`);
  }
  let keyMatched = false;
  const why: string[] = [];
  for (const s of accepted) {
    const verifier = verifiers.find((v) => v.alg === s.alg)!;
    const candidates = keys.filter((k) => (k.alg ?? SIGNATURE_ALGORITHM) === s.alg && (!s.key_id || !k.keyId || k.keyId === s.key_id));
    if (candidates.length === 0) continue;
    keyMatched = true;
    const signature = decoded(s.sig);
    if (signature?.length !== verifier.signatureLength) {
      why.push(`${s.alg} signature is ${signature ? `${signature.length} bytes, not ${verifier.signatureLength}` : "not base64"}`);
      continue;
    }
    for (const key of candidates) {
      const publicKey = decoded(key.publicKey);
      if (publicKey?.length === verifier.publicKeyLength && verifier.verify(message, signature, publicKey)) return;
    }
    why.push(`${s.alg} signature by ${s.key_id || "an unnamed key"} does not verify`);
  }
  if (!keyMatched) throw new UpdateError("UNKNOWN_KEY", `manifest signed with key ${accepted.map((s) => s.key_id).join(", ")}, which this device does not trust`);
  throw new UpdateError("SIGNATURE_INVALID", `manifest signature does not verify against any trusted key: ${why.join("; ")}`);
}

function decoded(b64: string): Uint8Array | null {
  try {
    return base64Decode(b64);
  } catch {
    return null;
  }
}
