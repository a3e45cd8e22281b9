// ed25519 in JavaScript (tweetnacl): the host's and the tests' verifier. In XS it costs ~44 M compute units per
// manifest, seconds on a 240 MHz chip, so the ESP32 build supplies its native one instead (device/esp32).
import nacl from "tweetnacl";
import type { SignatureVerifier } from "../ports";

export const ed25519Tweetnacl: SignatureVerifier = {
  alg: "ed25519",
  publicKeyLength: nacl.sign.publicKeyLength,
  signatureLength: nacl.sign.signatureLength,
  verify: (message, signature, publicKey) => nacl.sign.detached.verify(message, signature, publicKey),
};

/** A port's verifyEd25519 (the HashPort shape from before Ports.verifiers) behind the interface. */
export function ed25519From(verify: SignatureVerifier["verify"]): SignatureVerifier {
  return { ...ed25519Tweetnacl, verify };
}
