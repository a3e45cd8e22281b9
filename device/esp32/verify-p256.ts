// ECDSA P-256 (SHA-256) on the ESP32: ESP-IDF's mbedTLS through PSA, from our native module (esp32/native/p256).
import type { SignatureVerifier } from "../core/ports";
import P256 from "./native/p256";

export const p256Native: SignatureVerifier = {
  alg: "ecdsa-p256-sha256",
  publicKeyLength: 65,
  signatureLength: 64,
  verify: (message, signature, publicKey) => P256.verify(message, signature, publicKey),
};
