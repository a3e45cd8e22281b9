// Fake of our native ECDSA P-256 (device/esp32/native/p256.c: verify(message, signature, publicKey) → boolean,
// mbedTLS's PSA psa_verify_hash over SHA-256 there), checked by the host's OpenSSL through Node's crypto.
import { hostCall } from "./host";

const view = (b: ArrayBuffer | Uint8Array) => (b instanceof Uint8Array ? b : new Uint8Array(b));

export default class P256 {
  private constructor() {}
  static verify(message: ArrayBuffer | Uint8Array, signature: ArrayBuffer | Uint8Array, publicKey: ArrayBuffer | Uint8Array): boolean {
    return hostCall("p256.verify", view(message), view(signature), view(publicKey));
  }
}
