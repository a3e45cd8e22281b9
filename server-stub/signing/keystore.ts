// ed25519 manifest signing keys, kept in SQLite so `ota-server keys rotate` and a
// running server see the same set. The newest non-retired key signs; older ones stay
// listed until retired so devices can trust several during a rotation.
import { createHash, createPrivateKey, sign as cryptoSign, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import nacl from "tweetnacl";
import { base64Decode, base64Encode } from "../../device/protocol";
import type { Clock } from "../clock";
import type { Db } from "../db";

export interface SigningKey {
  key_id: string;
  public_key: string; // base64 of 32 raw bytes
  created_at: number;
  retired: boolean;
}

interface KeyRow {
  key_id: string;
  public_key: string;
  secret_key: string;
  created_at: number;
  retired: number;
  retired_at: number | null;
}

export function keyIdFor(publicKey: Uint8Array): string {
  return "k_" + createHash("sha256").update(publicKey).digest("hex").slice(0, 16);
}

export class KeyStore {
  constructor(private db: Db, private clock: Clock) {}

  list(): SigningKey[] {
    const rows = this.db.prepare("SELECT * FROM signing_keys ORDER BY created_at, rowid").all() as KeyRow[];
    return rows.map((r) => ({ key_id: r.key_id, public_key: r.public_key, created_at: r.created_at, retired: r.retired === 1 }));
  }

  /** Creates a key when none is active (first start). */
  ensureActive(): SigningKey {
    return this.active() ?? this.addKeyPair(nacl.sign.keyPair());
  }

  rotate(): SigningKey {
    return this.addKeyPair(nacl.sign.keyPair());
  }

  retire(keyId: string): boolean {
    const active = this.db.prepare("SELECT COUNT(*) AS n FROM signing_keys WHERE retired = 0 AND key_id != ?").get(keyId) as { n: number };
    if (active.n === 0) throw new Error("refusing to retire the last active key; rotate first");
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
    return this.addKeyPair(pair);
  }

  /** Signs bytes with the newest active key. */
  sign(bytes: Uint8Array): { key_id: string; signature: string } {
    const row = this.db
      .prepare("SELECT * FROM signing_keys WHERE retired = 0 ORDER BY created_at DESC, rowid DESC LIMIT 1")
      .get() as KeyRow | undefined;
    if (!row) throw new Error("no active signing key");
    return { key_id: row.key_id, signature: base64Encode(signEd25519(bytes, row.secret_key)) };
  }

  private active(): SigningKey | undefined {
    return this.list().filter((k) => !k.retired).at(-1);
  }

  private addKeyPair(pair: nacl.SignKeyPair): SigningKey {
    const key: SigningKey = {
      key_id: keyIdFor(pair.publicKey),
      public_key: base64Encode(pair.publicKey),
      created_at: this.clock.now(),
      retired: false,
    };
    this.db
      .prepare("INSERT INTO signing_keys(key_id, public_key, secret_key, created_at) VALUES (?, ?, ?, ?)")
      .run(key.key_id, key.public_key, base64Encode(pair.secretKey), key.created_at);
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
