// Types of p256.js (the host function in p256.c).

export default class P256 {
  private constructor();
  /** ECDSA P-256 over SHA-256 of message: signature r || s (64 bytes), publicKey 04 || X || Y (65 bytes). Throws on
   * other lengths. */
  static verify(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean;
}
