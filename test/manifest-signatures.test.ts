// Manifests signed by algorithm (issue 17, point 3): `signatures: [{key_id, alg, sig}]`, the legacy single ed25519
// signature, a device that accepts only the algorithms it is built for, trusted keys and key lists that carry
// their algorithm. Verifiers: tweetnacl's ed25519 and Node's P-256 (the ESP32's native ones give the same verdicts:
// ed25519-native.test.ts, p256-native.test.ts).
import { generateKeyPairSync, sign } from "node:crypto";
import nacl from "tweetnacl";
import { describe, expect, it } from "vitest";
import type { TrustedKey } from "../device/core/config";
import { resolveConfig } from "../device/core/config";
import type { SignatureVerifier } from "../device/core/ports";
import { currentKeySet, encodeKeySet, verifyKeyList } from "../device/core/release-keys";
import { parseEnvelope, verifySignature } from "../device/core/trust";
import { UpdateError } from "../device/core/update-error";
import { ed25519Tweetnacl } from "../device/core/verifiers/ed25519-tweetnacl";
import { acceptedVerifiers } from "../device/core/verifiers/select";
import { base64Encode, manifestSigningBytes, SIGNATURES_MAX, type KeyList, type ManifestSignature, type UpdateManifest } from "../device/protocol";
import { p256Node } from "../host-sim/device/node-verifiers";
import { generateReleaseKey, signKeyList } from "../release/signing";
import { p256PublicPoint } from "../server-stub/signing/p256";

const ed = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
const p256 = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const stranger = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const ED: TrustedKey = { keyId: "k_ed", publicKey: base64Encode(ed.publicKey) };
const P: TrustedKey = { keyId: "k_p", publicKey: base64Encode(p256PublicPoint(p256.publicKey)), alg: "ecdsa-p256-sha256" };
const BOTH = [ed25519Tweetnacl, p256Node];
const manifest = { manifest_version: 1, update_id: "upd_1", device_id: "dev-1", version: "1.1.0" } as unknown as UpdateManifest;
const bytes = manifestSigningBytes(manifest);

const edSig = (): ManifestSignature => ({ key_id: "k_ed", alg: "ed25519", sig: base64Encode(nacl.sign.detached(bytes, ed.secretKey)) });
const pSig = (key = p256.privateKey, keyId = "k_p"): ManifestSignature => ({ key_id: keyId, alg: "ecdsa-p256-sha256", sig: base64Encode(sign("sha256", bytes, { key, dsaEncoding: "ieee-p1363" })) });
const flipped = (s: ManifestSignature): ManifestSignature => {
  const raw = Buffer.from(s.sig, "base64");
  raw[10] ^= 0x20;
  return { ...s, sig: raw.toString("base64") };
};
const envelope = (extra: Record<string, unknown>) => JSON.stringify({ update_available: true, manifest, ...extra });

/** The code the device's signature check ends with, or "OK". */
function verdict(body: string, verifiers: SignatureVerifier[] = BOTH, keys: TrustedKey[] = [ED, P]): string {
  try {
    verifySignature(parseEnvelope(body)!, keys, verifiers);
    return "OK";
  } catch (e) {
    if (e instanceof UpdateError) return e.code;
    throw e;
  }
}

describe("manifest signatures by algorithm", () => {
  it("one signature in an accepted algorithm by a trusted key of that algorithm is enough", () => {
    const body = envelope({ signatures: [edSig(), pSig()] });
    expect(verdict(body)).toBe("OK");
    expect(verdict(body, [p256Node])).toBe("OK");
    expect(verdict(body, [ed25519Tweetnacl])).toBe("OK");
    expect(verdict(envelope({ signatures: [edSig(), flipped(pSig())] }))).toBe("OK");
    expect(verdict(envelope({ signatures: [flipped(edSig()), pSig()] }))).toBe("OK");
  });

  it("a device built for P-256 alone refuses a manifest whose P-256 signature is broken, though its ed25519 one holds", () => {
    expect(verdict(envelope({ signatures: [edSig(), flipped(pSig())] }), [p256Node])).toBe("SIGNATURE_INVALID");
    expect(verdict(envelope({ signatures: [edSig(), pSig(stranger.privateKey)] }), [p256Node])).toBe("SIGNATURE_INVALID");
    expect(verdict(envelope({ signatures: [flipped(edSig()), flipped(pSig())] }))).toBe("SIGNATURE_INVALID");
  });

  it("an unknown algorithm is skipped, not an error, unless no accepted signature remains", () => {
    const rsa = { key_id: "k_rsa", alg: "rsa-pss-sha256", sig: "AAAA" };
    expect(verdict(envelope({ signatures: [rsa, edSig()] }))).toBe("OK");
    expect(verdict(envelope({ signatures: [rsa] }))).toBe("SIGNATURE_INVALID");
    expect(verdict(envelope({ signatures: [pSig()] }), [ed25519Tweetnacl])).toBe("SIGNATURE_INVALID");
  });

  it("a key is matched by id and algorithm: an unknown id is UNKNOWN_KEY, an ed25519 key never checks a P-256 signature", () => {
    expect(verdict(envelope({ signatures: [pSig(p256.privateKey, "k_other")] }), [p256Node])).toBe("UNKNOWN_KEY");
    expect(verdict(envelope({ signatures: [pSig(p256.privateKey, "k_ed")] }), [p256Node], [ED, { ...P, keyId: "k_x" }])).toBe("UNKNOWN_KEY");
    expect(verdict(envelope({ signatures: [pSig()] }), [p256Node], [ED, { ...P, alg: undefined }])).toBe("UNKNOWN_KEY");
  });

  it("the legacy single signature is ed25519 for old servers; next to `signatures` it is ignored", () => {
    const legacy = { signature: edSig().sig, key_id: "k_ed", signature_alg: "ed25519" };
    expect(verdict(envelope(legacy))).toBe("OK");
    expect(verdict(envelope(legacy), [p256Node])).toBe("SIGNATURE_INVALID");
    expect(verdict(envelope({ ...legacy, signatures: [flipped(edSig())] }))).toBe("SIGNATURE_INVALID");
    expect(verdict(envelope({ ...legacy, signature_alg: "rsa" }))).toBe("SIGNATURE_INVALID");
  });

  it("malformed signature lists are MANIFEST_INVALID, a malformed sig SIGNATURE_INVALID, before any verify", () => {
    const cases: [unknown, string][] = [
      [[], "MANIFEST_INVALID"],
      ["x", "MANIFEST_INVALID"],
      [Array.from({ length: SIGNATURES_MAX + 1 }, edSig), "MANIFEST_INVALID"],
      [[{ ...edSig(), key_id: "k".repeat(129) }], "MANIFEST_INVALID"],
      [[{ ...edSig(), alg: "a".repeat(33) }], "MANIFEST_INVALID"],
      [[{ ...edSig(), alg: 5 }], "MANIFEST_INVALID"],
      [[{ ...edSig(), sig: "s".repeat(201) }], "SIGNATURE_INVALID"],
      [[{ ...edSig(), sig: "!!not base64!!" }], "SIGNATURE_INVALID"],
      [[{ ...pSig(), sig: base64Encode(new Uint8Array(72)) }], "SIGNATURE_INVALID"],
    ];
    for (const [signatures, code] of cases) expect(verdict(envelope({ signatures })), JSON.stringify(signatures).slice(0, 60)).toBe(code);
  });
});

describe("accepted algorithms and trusted keys", () => {
  const hash = { sha256: () => { throw new Error("unused"); } };

  it("a device accepts what its configuration names, and refuses to start naming one its platform cannot verify", () => {
    expect(acceptedVerifiers({ hash, verifiers: BOTH }).map((v) => v.alg)).toEqual(["ed25519", "ecdsa-p256-sha256"]);
    expect(acceptedVerifiers({ hash, verifiers: BOTH }, ["ecdsa-p256-sha256"])).toEqual([p256Node]);
    expect(acceptedVerifiers({ hash }).map((v) => v.alg)).toEqual(["ed25519"]);
    expect(() => acceptedVerifiers({ hash }, ["ecdsa-p256-sha256"])).toThrow(/no verifier/);
    const base = { deviceId: "d", deviceModel: "m", hardwareVersion: "1", serverUrl: "http://x", apiKey: "k", trustedKeys: [ED] };
    expect(() => resolveConfig({ ...base, signatureAlgs: ["rsa" as never] })).toThrow(/unknown signature algorithm rsa/);
    expect(() => resolveConfig({ ...base, trustedKeys: [{ ...P, alg: "dsa" as never }] })).toThrow(/unknown signature algorithm dsa/);
    expect(() => resolveConfig({ ...base, signatureAlgs: [] })).toThrow(/at least one/);
  });

  it("a key list carries server keys of either algorithm; the persisted set keeps each key's algorithm", () => {
    const release = generateReleaseKey(new Uint8Array(32).fill(11));
    const current = { version: 1, releaseKeys: [{ keyId: release.key_id, publicKey: release.public_key }], serverKeys: [ED] };
    const list = (server: KeyList["server_keys"]): string => JSON.stringify(signKeyList({ key_list_version: 2, issued_at: "2026-11-30T12:00:00.000Z", release_keys: [{ key_id: release.key_id, public_key: release.public_key }], server_keys: server }, release));
    const next = verifyKeyList(list([{ key_id: "k_ed", public_key: ED.publicKey }, { key_id: "k_p", public_key: P.publicKey, alg: "ecdsa-p256-sha256" }]), current);
    expect(next.serverKeys).toEqual([ED, P]);
    const stored = encodeKeySet(next);
    const state = { trustedKeySet: () => stored } as unknown as Parameters<typeof currentKeySet>[0];
    expect(currentKeySet(state, resolveConfig({ deviceId: "d", deviceModel: "m", hardwareVersion: "1", serverUrl: "http://x", apiKey: "k", trustedKeys: [ED] })).serverKeys).toEqual([ED, P]);
    expect(() => verifyKeyList(list([{ key_id: "k_p", public_key: P.publicKey }]), current)).toThrow(/not a 32-byte ed25519 key/);
    expect(() => verifyKeyList(list([{ key_id: "k_ed", public_key: ED.publicKey, alg: "ecdsa-p256-sha256" }]), current)).toThrow(/not a 65-byte ecdsa-p256-sha256 key/);
    expect(() => verifyKeyList(list([{ key_id: "k_x", public_key: ED.publicKey, alg: "rsa" }]), current)).toThrow(/does not know/);
  });
});
