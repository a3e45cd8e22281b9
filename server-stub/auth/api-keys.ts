// API keys: shown once, stored only as a SHA-256 hash (they are random 256-bit
// secrets, so a fast hash is enough; no password stretching needed).
import * as nodeCrypto from "node:crypto";
import { createHash, randomBytes } from "node:crypto";
import type { Clock } from "../clock";
import type { Db } from "../db";
import type { Principal, Role } from "./principal";

// Every authenticated request hashes its key: the one-shot crypto.hash (Node 20.12+) skips a Hash object.
const hash: (key: string) => string = typeof nodeCrypto.hash === "function"
  ? (key) => nodeCrypto.hash("sha256", key, "hex")
  : (key) => createHash("sha256").update(key, "utf8").digest("hex");
/** A device's client certificate is a credential row too (auth/device-certs.ts), keyed by its SHA-256 fingerprint:
 * listed, revoked and closing MQTT sessions as a key does. */
const CERT_PREFIX = "x509:";
const certSecret = (fingerprint: string) => CERT_PREFIX + fingerprint.toUpperCase();
/** A key's public id: the start of its hash (names it in lists and revocations without revealing it). */
const KEY_ID_HEX = 16;
const keyIdOf = (keyHash: string) => `ak_${keyHash.slice(0, KEY_ID_HEX)}`;
export const API_KEY_ID_RE = new RegExp(`^ak_[0-9a-f]{${KEY_ID_HEX}}$`);

export interface ApiKeyInfo {
  key_id: string;
  key_prefix: string;
  role: Role;
  device_id: string | null;
  name: string | null;
  created_at: number;
  revoked: boolean;
}

interface KeyRow {
  key_hash: string;
  key_prefix: string;
  role: Role;
  device_id: string | null;
  name: string | null;
  created_at: number;
  revoked: number;
}

const toInfo = (r: KeyRow): ApiKeyInfo => ({
  key_id: keyIdOf(r.key_hash), key_prefix: r.key_prefix, role: r.role, device_id: r.device_id, name: r.name, created_at: r.created_at, revoked: r.revoked === 1,
});

export class ApiKeyStore {
  /** Called inside the transaction that creates a device key (an external broker's provisioning records it there). */
  onDeviceKey: ((deviceId: string, apiKey: string) => void) | null = null;

  constructor(private db: Db, private clock: Clock) {}

  /** Creates a key; a device key replaces (revokes) the device's previous keys, not its client certificate. */
  create(role: Role, opts: { device_id?: string; name?: string } = {}): { api_key: string; info: ApiKeyInfo } {
    const apiKey = `ota_${role === "device" ? "dev" : role.slice(0, 3)}_${randomBytes(32).toString("base64url")}`;
    const row: KeyRow = {
      key_hash: hash(apiKey), key_prefix: apiKey.slice(0, 12), role, device_id: opts.device_id ?? null, name: opts.name ?? null, created_at: this.clock.now(), revoked: 0,
    };
    this.db.transaction(() => {
      if (role === "device" && opts.device_id) {
        this.db.prepare("UPDATE api_keys SET revoked = 1 WHERE device_id = ? AND role = 'device' AND key_prefix NOT LIKE ?").run(opts.device_id, `${CERT_PREFIX}%`);
      }
      this.db
        .prepare("INSERT INTO api_keys(key_hash, key_prefix, role, device_id, name, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .run(row.key_hash, row.key_prefix, role, row.device_id, row.name, row.created_at);
      if (role === "device" && opts.device_id) this.onDeviceKey?.(opts.device_id, apiKey);
    })();
    return { api_key: apiKey, info: toInfo(row) };
  }

  /** Every key, newest first; revoked ones too unless `activeOnly`. */
  list(filter: { role?: Role; activeOnly?: boolean } = {}): ApiKeyInfo[] {
    const rows = this.db.prepare("SELECT * FROM api_keys ORDER BY created_at DESC, rowid DESC").all() as KeyRow[];
    return rows.filter((r) => (!filter.role || r.role === filter.role) && (!filter.activeOnly || r.revoked === 0)).map(toInfo);
  }

  /** Revokes one key by its id; the key's info, or null when no such key exists. Revoking twice is harmless. */
  revoke(keyId: string): ApiKeyInfo | null {
    if (!API_KEY_ID_RE.test(keyId)) return null;
    const row = this.db.prepare("SELECT * FROM api_keys WHERE substr(key_hash, 1, ?) = ?").get(KEY_ID_HEX, keyId.slice(3)) as KeyRow | undefined;
    if (!row) return null;
    this.db.prepare("UPDATE api_keys SET revoked = 1 WHERE key_hash = ?").run(row.key_hash);
    return toInfo({ ...row, revoked: 1 });
  }

  /** Records a device's client certificate (by fingerprint), revoking the certificates issued to it before. */
  addDeviceCert(deviceId: string, fingerprint: string): ApiKeyInfo {
    const secret = certSecret(fingerprint);
    const row: KeyRow = { key_hash: hash(secret), key_prefix: secret.slice(0, 12), role: "device", device_id: deviceId, name: "client certificate", created_at: this.clock.now(), revoked: 0 };
    this.db.transaction(() => {
      this.db.prepare("UPDATE api_keys SET revoked = 1 WHERE device_id = ? AND role = 'device' AND key_prefix LIKE ?").run(deviceId, `${CERT_PREFIX}%`);
      this.db
        .prepare("INSERT INTO api_keys(key_hash, key_prefix, role, device_id, name, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .run(row.key_hash, row.key_prefix, row.role, row.device_id, row.name, row.created_at);
    })();
    return toInfo(row);
  }

  /** The device a client certificate stands for, when recorded and not revoked. */
  lookupDeviceCert(fingerprint: string): Principal | null {
    const row = this.db.prepare("SELECT device_id FROM api_keys WHERE key_hash = ? AND role = 'device' AND revoked = 0").get(hash(certSecret(fingerprint))) as
      | { device_id: string }
      | undefined;
    return row ? { role: "device", subject: row.device_id, via: "client_cert", device_id: row.device_id } : null;
  }

  /** Revokes every key of a device (its client certificates too); how many were active. */
  revokeDevice(deviceId: string): number {
    return this.db.prepare("UPDATE api_keys SET revoked = 1 WHERE device_id = ? AND role = 'device' AND revoked = 0").run(deviceId).changes;
  }

  lookup(apiKey: string): Principal | null {
    if (apiKey.length > 200) return null;
    // A certificate's row is found by its public fingerprint: never as an API key.
    const row = this.db.prepare("SELECT role, device_id, name, key_prefix FROM api_keys WHERE key_hash = ? AND revoked = 0 AND key_prefix NOT LIKE ?").get(hash(apiKey), `${CERT_PREFIX}%`) as
      | { role: Role; device_id: string | null; name: string | null; key_prefix: string }
      | undefined;
    if (!row) return null;
    if (row.role === "device") return { role: "device", subject: row.device_id!, via: "api_key", device_id: row.device_id! };
    return { role: row.role, subject: row.name ?? row.key_prefix, via: "api_key" };
  }
}
