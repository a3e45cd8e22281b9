// HashPort on Node's crypto (on the ESP32 it is crypt's native Digest).
import { createHash } from "node:crypto";
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
