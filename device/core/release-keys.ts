// The keys this device trusts (release and server) and their rotation over the air by a signed key list
// (device/protocol/release.ts). The baked-in keys hold until a key list signed by one of the current release keys,
// with a higher key_list_version, is verified and persisted in one journal commit; from then on it replaces them,
// across reboots. A list that is older, unsigned, signed by an unknown key, or that would leave no release or no
// server key is refused and changes nothing.
import { base64Decode } from "../protocol/base64";
import { KEY_ID_MAX, KEY_LIST_KEYS_MAX, KEY_LIST_MAX_BYTES, KEY_LIST_VERSION_MAX, SIGNATURE_ALG_MAX, SIGNATURE_MAX } from "../protocol/limits";
import type { SignatureAlg } from "../protocol/manifest";
import { SIGNATURE_ALGORITHMS } from "../protocol/manifest";
import type { KeyList, PublicKeyEntry } from "../protocol/release";
import { keyListSigningBytes } from "../protocol/release";
import { ROUTES } from "../protocol/paths";
import type { ResolvedConfig, TrustedKey } from "./config";
import type { AgentContext } from "./context";
import { errorMessage } from "./failures";
import type { SignatureVerifier } from "./ports";
import type { StateStore } from "./state";
import { ed25519Tweetnacl } from "./verifiers/ed25519-tweetnacl";
import { ed25519Verifier, platformVerifiers } from "./verifiers/select";

export interface KeySet {
  version: number;
  releaseKeys: TrustedKey[];
  serverKeys: TrustedKey[];
}

/** Public key lengths of the algorithms a key list may name (manifest.ts). */
const KEY_LENGTH: Record<SignatureAlg, number> = { "ed25519": 32, "ecdsa-p256-sha256": 65 };

export class KeyListRefused extends Error {}

/** The persisted set, or the baked-in one before the first key list (or if the record is unreadable). */
export function currentKeySet(state: StateStore, config: ResolvedConfig): KeySet {
  const raw = state.trustedKeySet();
  if (raw) {
    try {
      const o = JSON.parse(raw) as { v: number; r: StoredKey[]; s: StoredKey[] };
      const keys = (pairs: StoredKey[]) => pairs.map(([keyId, publicKey, alg]): TrustedKey => (alg ? { keyId, publicKey, alg } : { keyId, publicKey }));
      if (typeof o.v === "number" && o.r.length > 0 && o.s.length > 0) return { version: o.v, releaseKeys: keys(o.r), serverKeys: keys(o.s) };
    } catch {
      // fall through: the journal's CRC makes this a bug, and the baked-in keys are the safe fallback
    }
  }
  return { version: config.keyListVersion, releaseKeys: config.releaseKeys, serverKeys: config.trustedKeys };
}

/** [key id, public key] for ed25519 (the record's form before other algorithms), [.., .., alg] otherwise. */
type StoredKey = [string, string, SignatureAlg?];

export function encodeKeySet(k: KeySet): string {
  const pairs = (keys: TrustedKey[]) => keys.map((x): StoredKey => (x.alg && x.alg !== "ed25519" ? [x.keyId ?? "", x.publicKey, x.alg] : [x.keyId ?? "", x.publicKey]));
  return JSON.stringify({ v: k.version, r: pairs(k.releaseKeys), s: pairs(k.serverKeys) });
}

/** Checks a signed key-list body against the current set; the new set, or KeyListRefused saying why. */
export function verifyKeyList(body: string, current: KeySet, ed25519: SignatureVerifier = ed25519Tweetnacl): KeySet {
  const refuse = (why: string) => new KeyListRefused(`key list refused: ${why}`);
  if (body.length > KEY_LIST_MAX_BYTES) throw refuse(`body of ${body.length} bytes is too large`);
  let doc: { key_list?: KeyList; key_id?: unknown; signature?: unknown };
  try {
    doc = JSON.parse(body) as typeof doc;
  } catch {
    throw refuse("not JSON");
  }
  const list = doc?.key_list;
  if (typeof list !== "object" || list === null) throw refuse("no key_list object");
  const v = list.key_list_version;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > KEY_LIST_VERSION_MAX) throw refuse("key_list_version is not a positive integer");
  if (v <= current.version) throw refuse(`version ${v} is not newer than the trusted ${current.version}`);
  const signer = current.releaseKeys.find((k) => k.keyId === doc.key_id && (k.alg ?? "ed25519") === "ed25519");
  if (!signer) throw refuse(`signed by ${String(doc.key_id).slice(0, KEY_ID_MAX)}, not a release key this device trusts`);
  if (typeof doc.signature !== "string" || doc.signature.length > SIGNATURE_MAX) throw refuse("no signature");
  const releaseKeys = entries(list.release_keys, "release_keys", refuse);
  if (releaseKeys.some((k) => k.alg)) throw refuse("release keys must be ed25519 (they sign releases and key lists)");
  const serverKeys = entries(list.server_keys, "server_keys", refuse);
  let message: Uint8Array;
  let signature: Uint8Array;
  try {
    message = keyListSigningBytes(list);
    signature = base64Decode(doc.signature);
  } catch (e) {
    throw refuse(`unreadable: ${(e as Error).message}`);
  }
  if (signature.length !== ed25519.signatureLength || !ed25519.verify(message, signature, base64Decode(signer.publicKey))) throw refuse(`signature by ${signer.keyId} does not verify`);
  return { version: v, releaseKeys, serverKeys };
}

/** Each list must name 1..KEY_LIST_KEYS_MAX well-formed keys: dropping the signer is fine only with a successor. */
function entries(v: unknown, name: string, refuse: (why: string) => Error): TrustedKey[] {
  if (!Array.isArray(v) || v.length === 0) throw refuse(`${name} is empty: it would retire its signer without a successor`);
  if (v.length > KEY_LIST_KEYS_MAX) throw refuse(`${name} has more than ${KEY_LIST_KEYS_MAX} keys`);
  return (v as PublicKeyEntry[]).map((e) => {
    if (typeof e?.key_id !== "string" || e.key_id.length === 0 || e.key_id.length > KEY_ID_MAX) throw refuse(`a key id in ${name} is not a short string`);
    let bytes: Uint8Array | null = null;
    try {
      bytes = typeof e.public_key === "string" ? base64Decode(e.public_key) : null;
    } catch {
      bytes = null;
    }
    const alg = e.alg ?? "ed25519";
    if (typeof alg !== "string" || alg.length > SIGNATURE_ALG_MAX || !(SIGNATURE_ALGORITHMS as readonly string[]).includes(alg)) {
      throw refuse(`key ${e.key_id} in ${name} has an algorithm this device does not know`);
    }
    const length = KEY_LENGTH[alg as SignatureAlg];
    if (!bytes || bytes.length !== length) throw refuse(`key ${e.key_id} in ${name} is not a ${length}-byte ${alg} key`);
    return e.alg && e.alg !== "ed25519" ? { keyId: e.key_id, publicKey: e.public_key, alg: e.alg as SignatureAlg } : { keyId: e.key_id, publicKey: e.public_key };
  });
}

/** The key_list_version the server advertises in an available-updates body, or 0. */
export function advertisedKeyListVersion(body: string): number {
  try {
    const v = (JSON.parse(body) as { key_list_version?: unknown }).key_list_version;
    return typeof v === "number" && Number.isInteger(v) && v > 0 ? v : 0;
  } catch {
    return 0;
  }
}

/** When the server advertises a newer key list: fetch, verify, persist. Never throws: an unreachable or refused
 * list leaves the current keys in force, and the update check goes on with them. */
export async function syncKeyList(ctx: AgentContext, offerBody: string): Promise<void> {
  const { log } = ctx.ports;
  const current = currentKeySet(ctx.state, ctx.config);
  const advertised = advertisedKeyListVersion(offerBody);
  if (advertised <= current.version || current.releaseKeys.length === 0) return;
  try {
    const body = await ctx.client.fetchText(ROUTES.keyList);
    const next = verifyKeyList(body, current, ed25519Verifier(platformVerifiers(ctx.ports)));
    ctx.state.saveTrustedKeySet(encodeKeySet(next));
    log.log("info", "key list installed", { key_list_version: next.version, release_keys: next.releaseKeys.map((k) => k.keyId).join(","), server_keys: next.serverKeys.map((k) => k.keyId).join(",") });
  } catch (e) {
    log.log("warn", e instanceof KeyListRefused ? "key list refused" : "key list not fetched", { key_list_version: advertised, error: errorMessage(e) });
  }
}
