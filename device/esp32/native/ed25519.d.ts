// Types of ed25519.js (the host function in ed25519.c).

export default class Ed25519 {
  private constructor();
  /** nacl.sign.detached.verify in C: the same verdicts. Throws when the signature is not 64 bytes or the key not 32. */
  static verify(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean;
}
