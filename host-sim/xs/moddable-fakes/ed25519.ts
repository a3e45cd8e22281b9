// Fake of our native ed25519 (device/esp32/native/ed25519.c: verify(message, signature, publicKey) → boolean,
// the same verdicts as tweetnacl), checked by the host's ed25519.
import { hostCall } from "./host";

const view = (b: ArrayBuffer | Uint8Array) => (b instanceof Uint8Array ? b : new Uint8Array(b));

export default class Ed25519 {
  private constructor() {}
  static verify(message: ArrayBuffer | Uint8Array, signature: ArrayBuffer | Uint8Array, publicKey: ArrayBuffer | Uint8Array): boolean {
    return hostCall("ed25519.verify", view(message), view(signature), view(publicKey));
  }
}
