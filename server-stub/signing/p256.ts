// ECDSA P-256 with SHA-256 through node:crypto, in the protocol's encodings (device/protocol/manifest.ts): the
// public key as the 65-byte uncompressed point, the signature as the 64 bytes r || s (IEEE P1363, not DER).
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { base64Decode } from "../../device/protocol";

/** The raw uncompressed point 04 || X || Y of a P-256 public key. */
export function p256PublicPoint(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: "jwk" });
  return Uint8Array.from(Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, "base64url"), Buffer.from(jwk.y!, "base64url")]));
}

/** A new key pair: the public point, and the private key as PKCS#8 DER. */
export function newP256KeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return { publicKey: p256PublicPoint(publicKey), secretKey: Uint8Array.from(privateKey.export({ format: "der", type: "pkcs8" })) };
}

const privateKeys = new Map<string, KeyObject>();

/** ECDSA (randomised k, as OpenSSL does) over SHA-256 of the bytes: 64 bytes r || s. */
export function signP256(bytes: Uint8Array, secretKeyB64: string): Uint8Array {
  let key = privateKeys.get(secretKeyB64);
  if (!key) {
    key = createPrivateKey({ key: Buffer.from(base64Decode(secretKeyB64)), format: "der", type: "pkcs8" });
    privateKeys.set(secretKeyB64, key);
  }
  return new Uint8Array(sign("sha256", bytes, { key, dsaEncoding: "ieee-p1363" }));
}
