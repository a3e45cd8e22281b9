// HashPort on Node's crypto (on the ESP32 it is crypt's native Digest).
import { createHash, createPublicKey, verify, type KeyObject } from "node:crypto";
import type { HashPort, Sha256 } from "../../device/core/ports";

export const nodeHash: HashPort = {
  sha256(): Sha256 {
    const h = createHash("sha256");
    return {
      update: (bytes) => void h.update(bytes),
      digest: () => new Uint8Array(h.digest()),
    };
  },
};

/** DER prefix of an ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows. */
const ED25519_SPKI = Buffer.from("302a300506032b6570032100", "hex");
const keyObjects = new Map<string, KeyObject>();

/** ed25519 through OpenSSL: the same verdict as tweetnacl, ~100× cheaper (fleets verify thousands of manifests). */
export function nativeVerifyEd25519(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  const id = Buffer.from(publicKey).toString("hex");
  let key = keyObjects.get(id);
  if (!key) {
    try {
      key = createPublicKey({ key: Buffer.concat([ED25519_SPKI, publicKey]), format: "der", type: "spki" });
    } catch {
      return false;
    }
    keyObjects.set(id, key);
  }
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}

/** nodeHash plus native ed25519 (opt-in: the default path keeps verifying with the agent's own tweetnacl). */
export const nodeHashNativeEd25519: HashPort = { ...nodeHash, verifyEd25519: nativeVerifyEd25519 };
