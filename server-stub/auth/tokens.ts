// Development JWTs (HS256). The secret comes from OTA_JWT_SECRET or is generated once into the data dir (on
// PostgreSQL, into the database all replicas share), so tokens survive a restart.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSigner, createVerifier } from "fast-jwt";
import type { Clock } from "../clock";
import type { Db } from "../db";
import { ROLES, type Principal, type Role } from "./principal";

export function loadJwtSecret(dataDir: string, env: NodeJS.ProcessEnv = process.env, db?: Db): string {
  if (env.OTA_JWT_SECRET) return env.OTA_JWT_SECRET;
  // Replicas on one PostgreSQL must sign and seal alike: the first to start stores the secret, the others read it.
  if (db?.dialect === "pg") {
    db.prepare("INSERT INTO server_secrets(name, value) VALUES ('jwt', ?) ON CONFLICT (name) DO NOTHING").run(randomBytes(32).toString("hex"));
    return (db.prepare("SELECT value FROM server_secrets WHERE name = 'jwt'").get() as { value: string }).value;
  }
  const file = join(dataDir, "jwt-secret");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const secret = randomBytes(32).toString("hex");
  writeFileSync(file, secret + "\n", { mode: 0o600 });
  return secret;
}

export interface TokenClaims {
  user_id: string;
  email?: string | null;
  role: Role;
  device_id?: string | null;
}

export class TokenService {
  constructor(private secret: string, private clock: Clock) {}

  issue(claims: TokenClaims, expiresInSeconds: number): string {
    // A signer per token: the clock is injectable, and fast-jwt fixes clockTimestamp at creation.
    const sign = createSigner({ key: this.secret, algorithm: "HS256", expiresIn: expiresInSeconds * 1000, clockTimestamp: this.clock.now() });
    const payload: Record<string, unknown> = { sub: claims.user_id, role: claims.role };
    if (claims.email) payload.email = claims.email;
    if (claims.device_id) payload.device_id = claims.device_id;
    return sign(payload);
  }

  /** Returns the principal, or null for any invalid/expired token. */
  verify(token: string): Principal | null {
    try {
      const verify = createVerifier({ key: this.secret, algorithms: ["HS256"], clockTimestamp: this.clock.now(), requiredClaims: ["sub", "role", "exp"] });
      const p = verify(token) as { sub?: unknown; role?: unknown; device_id?: unknown };
      if (typeof p.sub !== "string" || !ROLES.includes(p.role as Role)) return null;
      const role = p.role as Role;
      if (role === "device") {
        if (typeof p.device_id !== "string") return null;
        return { role, subject: p.sub, via: "jwt", device_id: p.device_id };
      }
      return { role, subject: p.sub, via: "jwt" };
    } catch {
      return null;
    }
  }
}
