// Which verifiers a device uses: those its platform supplies (Ports.verifiers), narrowed to the algorithms its
// configuration accepts (AgentConfig.signatureAlgs). Without Ports.verifiers: ed25519 alone, as before.
import type { SignatureAlg } from "../../protocol/manifest";
import type { Ports, SignatureVerifier } from "../ports";
import { ed25519From, ed25519Tweetnacl } from "./ed25519-tweetnacl";

export function platformVerifiers(ports: Pick<Ports, "hash" | "verifiers">): readonly SignatureVerifier[] {
  if (ports.verifiers) return ports.verifiers;
  const native = ports.hash.verifyEd25519;
  return [native ? ed25519From(native.bind(ports.hash)) : ed25519Tweetnacl];
}

/** The verifiers for the accepted algorithms; an accepted algorithm the platform lacks is a configuration error. */
export function acceptedVerifiers(ports: Pick<Ports, "hash" | "verifiers">, accepted?: readonly SignatureAlg[]): SignatureVerifier[] {
  const available = platformVerifiers(ports);
  if (!accepted) return [...available];
  return accepted.map((alg) => {
    const v = available.find((x) => x.alg === alg);
    if (!v) throw new Error(`signatureAlgs names ${alg}, which this platform has no verifier for (it has ${available.map((x) => x.alg).join(", ")})`);
    return v;
  });
}

/** The ed25519 verifier, for release signatures and key lists (ed25519 only: the firmware team's offline keys). */
export function ed25519Verifier(verifiers: readonly SignatureVerifier[]): SignatureVerifier {
  return verifiers.find((v) => v.alg === "ed25519") ?? ed25519Tweetnacl;
}
