// Manifest signing keys, ed25519 and ECDSA P-256, kept in SQLite so `ota-server keys rotate` and a running server
// see the same set. Per algorithm, the newest non-retired key signs; older ones stay listed until retired so
// devices can trust several during a rotation. Every manifest carries one signature per algorithm (manifest.ts).
import { createHash, createPrivateKey, sign as cryptoSign, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import nacl from "tweetnacl";
import { base64Decode, base64Encode, type ManifestSignature, type SignatureAlg } from "../../device/protocol";
import type { Clock } from "../clock";
import type { Db } from "../db";
import { newP256KeyPair, signP256 } from "./p256";

export interface SigningKey {
  key_id: string;
  /** base64: 32 raw bytes (ed25519), or the 65-byte uncompressed point (ecdsa-p256-sha256) */
  public_key: string;
  algorithm: SignatureAlg;
  created_at: number;
  retired: boolean;
}

interface KeyRow {
  key_id: string;
  public_key: string;
  /** base64: tweetnacl's 64-byte secret key (ed25519), PKCS#8 DER (P-256) */
  secret_key: string;
  algorithm: SignatureAlg;
  created_at: number;
  retired: number;
  retired_at: number | null;
}

interface KeyPair {
  algorithm: SignatureAlg;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

const ed25519Pair = (pair: nacl.SignKeyPair = nacl.sign.keyPair()): KeyPair => ({ algorithm: "ed25519", ...pair });
const newPair = (algorithm: SignatureAlg): KeyPair => (algorithm === "ed25519" ? ed25519Pair() : { algorithm, ...newP256KeyPair() });
/** The algorithms a server signs with from its first start. */
export const SERVER_SIGNATURE_ALGS: readonly SignatureAlg[] = ["ed25519", "ecdsa-p256-sha256"];

export function keyIdFor(publicKey: Uint8Array): string {
  return "k_" + createHash("sha256").update(publicKey).digest("hex").slice(0, 16);
}

export class KeyStore {
  constructor(private db: Db, private clock: Clock) {}

  /** ed25519 keys first (the legacy signature's, which older tools pick as the first signing key), then by age. */
  list(): SigningKey[] {
    const rows = this.db.prepare("SELECT * FROM signing_keys ORDER BY algorithm != 'ed25519', created_at, rowid").all() as KeyRow[];
    return rows.map((r) => ({ key_id: r.key_id, public_key: r.public_key, algorithm: r.algorithm, created_at: r.created_at, retired: r.retired === 1 }));
  }

  /** Creates a key for each algorithm without an active one (first start, or a data dir from before P-256);
   * returns the ed25519 signer. */
  ensureActive(): SigningKey {
    for (const alg of SERVER_SIGNATURE_ALGS) if (!this.active(alg)) this.addKeyPair(newPair(alg));
    return this.active("ed25519")!;
  }

  /** The keys that sign now: the newest active one of each algorithm. */
  signers(): SigningKey[] {
    return SERVER_SIGNATURE_ALGS.map((alg) => this.active(alg)).filter((k): k is SigningKey => k !== undefined);
  }

  rotate(algorithm: SignatureAlg = "ed25519"): SigningKey {
    return this.addKeyPair(newPair(algorithm));
  }

  retire(keyId: string): boolean {
    const key = this.list().find((k) => k.key_id === keyId);
    const active = this.db.prepare("SELECT COUNT(*) AS n FROM signing_keys WHERE retired = 0 AND key_id != ? AND algorithm = ?").get(keyId, key?.algorithm ?? "ed25519") as { n: number };
    if (key && !key.retired && active.n === 0) throw new Error(`refusing to retire the last active ${key.algorithm} key; rotate first`);
    const r = this.db.prepare("UPDATE signing_keys SET retired = 1, retired_at = ? WHERE key_id = ? AND retired = 0").run(this.clock.now(), keyId);
    return r.changes === 1;
  }

  /**
   * Imports a key from a file: a 32-byte seed or 64-byte nacl secret key, as raw bytes,
   * base64 or hex text. The imported key becomes the signing key (newest).
   */
  importFile(path: string): SigningKey {
    const raw = readFileSync(path);
    const text = raw.toString("utf8").trim();
    let bytes: Uint8Array = raw;
    if (/^[0-9a-fA-F]{64}$|^[0-9a-fA-F]{128}$/.test(text)) bytes = Buffer.from(text, "hex");
    else if (/^[A-Za-z0-9+/]+=*$/.test(text) && (text.length === 44 || text.length === 88)) bytes = base64Decode(text);
    let pair: nacl.SignKeyPair;
    if (bytes.length === 32) pair = nacl.sign.keyPair.fromSeed(bytes);
    else if (bytes.length === 64) pair = nacl.sign.keyPair.fromSecretKey(bytes);
    else throw new Error(`signing key file ${path}: expected a 32-byte seed or 64-byte secret key`);
    const id = keyIdFor(pair.publicKey);
    const existing = this.db.prepare("SELECT key_id FROM signing_keys WHERE key_id = ?").get(id);
    if (existing) {
      // Make it the signer again without duplicating it.
      this.db.prepare("UPDATE signing_keys SET retired = 0, retired_at = NULL, created_at = ? WHERE key_id = ?").run(this.clock.now(), id);
      return this.list().find((k) => k.key_id === id)!;
    }
    return this.addKeyPair(ed25519Pair(pair));
  }

  /** Signs bytes with the newest active ed25519 key (the legacy single signature). */
  sign(bytes: Uint8Array): { key_id: string; signature: string } {
    const ed = this.signAll(bytes).find((s) => s.alg === "ed25519");
    if (!ed) throw new Error("no active ed25519 signing key");
    return { key_id: ed.key_id, signature: ed.sig };
  }

  /** One signature per algorithm, by its newest active key. */
  signAll(bytes: Uint8Array): ManifestSignature[] {
    const newest = this.newestActiveRows();
    if (newest.length === 0) throw new Error("no active signing key");
    return newest.map((r) => ({
      key_id: r.key_id,
      alg: r.algorithm,
      sig: base64Encode(r.algorithm === "ed25519" ? signEd25519(bytes, r.secret_key) : signP256(bytes, r.secret_key)),
    }));
  }

  /** The ids of the keys signAll signs with now, in its order (read afresh: `keys rotate` may run in another process). */
  signerIds(): string[] {
    return this.newestActiveRows().map((r) => r.key_id);
  }

  private newestActiveRows(): KeyRow[] {
    const rows = this.db
      .prepare("SELECT * FROM signing_keys WHERE retired = 0 ORDER BY algorithm != 'ed25519', algorithm, created_at DESC, rowid DESC")
      .all() as KeyRow[];
    return rows.filter((r, i) => i === 0 || rows[i - 1]!.algorithm !== r.algorithm);
  }

  private active(algorithm: SignatureAlg): SigningKey | undefined {
    return this.list().filter((k) => !k.retired && k.algorithm === algorithm).at(-1);
  }

  private addKeyPair(pair: KeyPair): SigningKey {
    const key: SigningKey = {
      key_id: keyIdFor(pair.publicKey),
      public_key: base64Encode(pair.publicKey),
      algorithm: pair.algorithm,
      created_at: this.clock.now(),
      retired: false,
    };
    this.db
      .prepare("INSERT INTO signing_keys(key_id, public_key, secret_key, algorithm, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(key.key_id, key.public_key, base64Encode(pair.secretKey), key.algorithm, key.created_at);
    return key;
  }
}


/** PKCS#8 DER prefix of an ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8 = Buffer.from("302e020100300506032b657004220420", "hex");
const privateKeys = new Map<string, KeyObject>();

/** ed25519 through OpenSSL: byte-identical to nacl.sign.detached (RFC 8032 signatures are deterministic), and
 * ~50× cheaper, which matters when a thousand devices ask for manifests at once. */
function signEd25519(bytes: Uint8Array, secretKeyB64: string): Uint8Array {
  let key = privateKeys.get(secretKeyB64);
  if (!key) {
    const seed = base64Decode(secretKeyB64).subarray(0, 32); // tweetnacl's 64-byte secret key is seed || public key
    key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: "der", type: "pkcs8" });
    privateKeys.set(secretKeyB64, key);
  }
  return new Uint8Array(cryptoSign(null, bytes, key));
}
