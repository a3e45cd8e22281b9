// ed25519 on the ESP32: our native port of tweetnacl's verify (esp32/native/ed25519), the same verdicts at a
// fraction of tweetnacl-in-XS's cost (~44 M compute units).
import type { SignatureVerifier } from "../core/ports";
import Ed25519 from "./native/ed25519";

export const ed25519Native: SignatureVerifier = {
  alg: "ed25519",
  publicKeyLength: 32,
  signatureLength: 64,
  verify: (message, signature, publicKey) => Ed25519.verify(message, signature, publicKey),
};
