// The simulator's signature verifiers (device/core/ports.ts SignatureVerifier): ECDSA P-256 through Node's crypto
// (OpenSSL), as the ESP32 build verifies it through ESP-IDF's mbedTLS; ed25519 through tweetnacl (the agent's own)
// or OpenSSL (fleets, which verify thousands of manifests).
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import type { SignatureVerifier } from "../../device/core/ports";
import { ed25519From, ed25519Tweetnacl } from "../../device/core/verifiers/ed25519-tweetnacl";
import { nativeVerifyEd25519 } from "./node-hash";

/** DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1); the 65-byte point follows. */
const P256_SPKI = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex");
const keyObjects = new Map<string, KeyObject>();

function p256Key(point: Uint8Array): KeyObject | null {
  const id = Buffer.from(point).toString("hex");
  let key = keyObjects.get(id);
  if (!key) {
    try {
      key = createPublicKey({ key: Buffer.concat([P256_SPKI, point]), format: "der", type: "spki" });
    } catch {
      return null; // not a point on the curve
    }
    keyObjects.set(id, key);
  }
  return key;
}

export const p256Node: SignatureVerifier = {
  alg: "ecdsa-p256-sha256",
  publicKeyLength: 65,
  signatureLength: 64,
  verify(message, signature, publicKey) {
    if (publicKey.length !== 65 || signature.length !== 64) return false;
    const key = p256Key(publicKey);
    if (!key) return false;
    try {
      return verify("sha256", message, { key, dsaEncoding: "ieee-p1363" }, signature);
    } catch {
      return false;
    }
  },
};

/** What a simulated device verifies with: both algorithms, ed25519 by tweetnacl unless `openSslEd25519`. */
export function nodeVerifiers(openSslEd25519 = false): SignatureVerifier[] {
  return [openSslEd25519 ? ed25519From(nativeVerifyEd25519) : ed25519Tweetnacl, p256Node];
}
