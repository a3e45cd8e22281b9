// API keys: shown once, stored only as a SHA-256 hash (they are random 256-bit
// secrets, so a fast hash is enough; no password stretching needed).
import { createHash, randomBytes } from "node:crypto";
import type { Clock } from "../clock";
import type { Db } from "../db";
import type { Principal, Role } from "./principal";

const hash = (key: string) => createHash("sha256").update(key, "utf8").digest("hex");

export interface ApiKeyInfo {
  key_prefix: string;
  role: Role;
  device_id: string | null;
  name: string | null;
  created_at: number;
}

export class ApiKeyStore {
  constructor(private db: Db, private clock: Clock) {}

  /** Creates a key; a device key replaces (revokes) the device's previous keys. */
  create(role: Role, opts: { device_id?: string; name?: string } = {}): { api_key: string; info: ApiKeyInfo } {
    const apiKey = `ota_${role === "device" ? "dev" : role.slice(0, 3)}_${randomBytes(32).toString("base64url")}`;
    const info: ApiKeyInfo = {
      key_prefix: apiKey.slice(0, 12),
      role,
      device_id: opts.device_id ?? null,
      name: opts.name ?? null,
      created_at: this.clock.now(),
    };
    this.db.transaction(() => {
      if (role === "device" && opts.device_id) {
        this.db.prepare("UPDATE api_keys SET revoked = 1 WHERE device_id = ? AND role = 'device'").run(opts.device_id);
      }
      this.db
        .prepare("INSERT INTO api_keys(key_hash, key_prefix, role, device_id, name, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .run(hash(apiKey), info.key_prefix, role, info.device_id, info.name, info.created_at);
    })();
    return { api_key: apiKey, info };
  }

  lookup(apiKey: string): Principal | null {
    if (apiKey.length > 200) return null;
    const row = this.db.prepare("SELECT role, device_id, name, key_prefix FROM api_keys WHERE key_hash = ? AND revoked = 0").get(hash(apiKey)) as
      | { role: Role; device_id: string | null; name: string | null; key_prefix: string }
      | undefined;
    if (!row) return null;
    if (row.role === "device") return { role: "device", subject: row.device_id!, via: "api_key", device_id: row.device_id! };
    return { role: row.role, subject: row.name ?? row.key_prefix, via: "api_key" };
  }
}
