// HashPort on crypt's Digest (native SHA-256) and our native ed25519 verify (esp32/native/ed25519, the same
// verdicts as tweetnacl, which in XS would block the VM for seconds per manifest).
import { Digest } from "crypt";
import type { HashPort, Sha256 } from "../core/ports";
import Ed25519 from "./native/ed25519";

class EspSha256 implements Sha256 {
  #digest: Digest | undefined = new Digest("SHA256");
  update(bytes: Uint8Array): void {
    if (!this.#digest) throw new Error("sha256: digest already taken");
    // Digest.write reads any buffer view (xsmcGetBufferReadable), though the SDK typing says ArrayBuffer.
    this.#digest.write(bytes as unknown as ArrayBuffer);
  }
  digest(): Uint8Array {
    if (!this.#digest) throw new Error("sha256: digest already taken");
    const out = new Uint8Array(this.#digest.close());
    this.#digest = undefined;
    return out;
  }
}

export class EspHashPort implements HashPort {
  sha256(): Sha256 {
    return new EspSha256();
  }
  verifyEd25519(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
    return Ed25519.verify(message, signature, publicKey);
  }
}
