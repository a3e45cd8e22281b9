// Device accounts on an external Mosquitto (dynamic-security plugin). Each device gets a broker client named by its id,
// with its API key as password and a role that lets it subscribe to its command topic and publish its status topic,
// nothing else. The database says what the broker should hold (broker_accounts); reconcile() makes the broker agree,
// so a key created while the broker was down, a revocation made by the CLI or by another server replica, all converge.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";
import { otaCommandTopic, otaStatusTopic } from "../../device/protocol";
import type { Ctx } from "../context";
import type { Db } from "../db";
import { logEvent } from "../log";
import type { DynsecControl, DynsecResult } from "./dynsec";

// broker_accounts (in db.ts's schema): a key is pending while sealed_secret holds it (sealed: the broker needs the key
// itself, the database keeps only hashes of keys); once the broker confirmed it, sealed_secret is cleared.

export const deviceRoleName = (deviceId: string) => `ota-device-${deviceId}`;
export const SERVER_ROLE = "ota-server";

/** What a device may do on the broker: read its commands, write its status. Default ACL access denies the rest. */
export function deviceAcls(deviceId: string) {
  return [
    { acltype: "subscribeLiteral", topic: otaCommandTopic(deviceId), allow: true },
    { acltype: "publishClientSend", topic: otaStatusTopic(deviceId), allow: true },
  ];
}

/** The server's own account: publish every device's commands, read every device's status. */
const SERVER_ACLS = [
  { acltype: "publishClientSend", topic: "devices/+/ota", allow: true },
  { acltype: "subscribePattern", topic: "devices/+/ota/status", allow: true },
  { acltype: "publishClientReceive", topic: "devices/+/ota/status", allow: true },
];

/** Seals secrets with AES-256-GCM under a key derived from the server's secret (shared by every replica). */
export class Sealer {
  private key: Buffer;
  constructor(serverSecret: string) {
    this.key = Buffer.from(hkdfSync("sha256", serverSecret, "", "ota broker_accounts", 32));
  }
  seal(text: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", this.key, iv);
    const body = Buffer.concat([c.update(text, "utf8"), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]).toString("base64");
  }
  /** null when the text was sealed under another secret (or altered). */
  unseal(sealed: string): string | null {
    const raw = Buffer.from(sealed, "base64");
    try {
      const d = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
      d.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString("utf8");
    } catch {
      return null;
    }
  }
}

const keyHashOf = (apiKey: string) => createHash("sha256").update(apiKey, "utf8").digest("hex"); // as auth/api-keys.ts stores it

/** Records a new device key for the broker; called inside the transaction that creates the key. */
export function recordDeviceKey(db: Db, sealer: Sealer, deviceId: string, apiKey: string, now: number): void {
  db.prepare(
    `INSERT INTO broker_accounts(device_id, key_hash, sealed_secret, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT(device_id) DO UPDATE SET key_hash = excluded.key_hash, sealed_secret = excluded.sealed_secret, updated_at = excluded.updated_at`,
  ).run(deviceId, keyHashOf(apiKey), sealer.seal(apiKey), now);
}

interface AccountRow {
  device_id: string;
  key_hash: string;
  sealed_secret: string | null;
}

const already = (r: DynsecResult) => /already|not found/i.test(r.error ?? "");

export class BrokerProvisioner {
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(private ctx: Ctx, private control: DynsecControl, private sealer: Sealer, private adminUser: string) {}

  /** Gives the server's account its role (the dynsec admin may administer, not publish to devices). Mosquitto
   * disconnects a client whose roles change, so that answer may be lost: `connected` waits for the reconnection. */
  async ensureServerRole(connected: () => Promise<void>): Promise<void> {
    const hasRole = async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          const [got] = await this.control.expect([{ command: "getClient", username: this.adminUser }]);
          return ((got!.data as { client?: { roles?: Array<{ rolename: string }> } })?.client?.roles ?? []).some((r) => r.rolename === SERVER_ROLE);
        } catch (e) {
          if (attempt === 3) throw e;
          await connected();
        }
      }
    };
    if (await hasRole()) return;
    await this.control.expect([{ command: "createRole", rolename: SERVER_ROLE, acls: SERVER_ACLS }], already);
    await this.control.run([{ command: "addClientRole", username: this.adminUser, rolename: SERVER_ROLE }]).catch(() => undefined);
    await connected();
    if (!(await hasRole())) throw new Error(`the broker account ${this.adminUser} could not be given the role ${SERVER_ROLE}`);
  }

  /** Runs reconcile now, or once more after the run under way (calls never overlap). */
  reconcileSoon(full = false): Promise<void> {
    if (this.stopped) return this.running ?? Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.reconcile(full)
      .catch((err) => this.ctx.log.warn({ err }, "mqtt_provisioning_failed"))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          void this.reconcileSoon();
        }
      });
    return this.running;
  }

  /** No new runs; resolves when the one under way has ended. */
  stop(): Promise<void> {
    this.stopped = true;
    return this.running ?? Promise.resolve();
  }

  /** Pushes pending keys, removes revoked ones; `full` also removes device accounts the database does not know. */
  private async reconcile(full: boolean): Promise<void> {
    const db = this.ctx.db;
    // One statement for the whole fleet, answering only the accounts with work to do: this runs every 5 s.
    const rows = db.prepare(`SELECT device_id, key_hash, sealed_secret, active FROM (
        SELECT b.device_id, b.key_hash, b.sealed_secret,
          CASE WHEN EXISTS (SELECT 1 FROM api_keys k WHERE k.key_hash = b.key_hash AND k.role = 'device' AND k.device_id = b.device_id AND k.revoked = 0)
            THEN 1 ELSE 0 END AS active
        FROM broker_accounts b) accounts
      WHERE active = 0 OR sealed_secret IS NOT NULL`).all() as Array<AccountRow & { active: number }>;
    for (const row of rows) {
      if (!row.active) await this.remove(row);
      else if (row.sealed_secret) await this.push(row, row.sealed_secret);
    }
    if (full) {
      await this.removeStrangers();
      // Keys made before provisioning was on (or by another process without it): the database has only their hash.
      const missing = db.prepare("SELECT COUNT(*) AS n FROM api_keys WHERE role = 'device' AND revoked = 0 AND device_id NOT IN (SELECT device_id FROM broker_accounts)").get() as { n: number };
      if (missing.n > 0) logEvent(this.ctx.log, "mqtt_devices_without_broker_account", { count: missing.n, hint: "re-key them (POST /api/v1/devices) so the broker learns their key" }, "warn");
    }
  }

  private async push(row: AccountRow, sealed: string): Promise<void> {
    const secret = this.sealer.unseal(sealed);
    if (secret === null) {
      logEvent(this.ctx.log, "mqtt_provisioning_unsealable", { device_id: row.device_id, hint: "sealed under another server secret: re-key the device" }, "warn");
      return;
    }
    const id = row.device_id;
    const rolename = deviceRoleName(id);
    await this.control.expect([{ command: "createRole", rolename, acls: deviceAcls(id) }], already);
    const [created] = await this.control.run([{ command: "createClient", username: id, password: secret, roles: [{ rolename }] }]);
    if (created!.error && !already(created!)) throw new Error(`dynamic-security createClient: ${created!.error}`);
    if (created!.error) {
      // A re-keyed device: disabling kicks the sessions that logged in with the old key.
      await this.control.expect([
        { command: "disableClient", username: id },
        { command: "setClientPassword", username: id, password: secret },
        { command: "addClientRole", username: id, rolename },
        { command: "enableClient", username: id },
      ], already);
    }
    // Cleared only if no newer key arrived meanwhile.
    this.ctx.db.prepare("UPDATE broker_accounts SET sealed_secret = NULL WHERE device_id = ? AND key_hash = ?").run(id, row.key_hash);
    logEvent(this.ctx.log, "mqtt_device_provisioned", { device_id: id });
  }

  private async remove(row: AccountRow): Promise<void> {
    // deleteClient also disconnects the sessions that use it.
    await this.control.expect([{ command: "deleteClient", username: row.device_id }, { command: "deleteRole", rolename: deviceRoleName(row.device_id) }], already);
    this.ctx.db.prepare("DELETE FROM broker_accounts WHERE device_id = ? AND key_hash = ?").run(row.device_id, row.key_hash);
    logEvent(this.ctx.log, "mqtt_device_deprovisioned", { device_id: row.device_id });
  }

  /** Broker accounts with a device role that the database has no account for (a restored database, a lost delete). */
  private async removeStrangers(): Promise<void> {
    const [list] = await this.control.expect([{ command: "listClients", verbose: true, count: -1, offset: 0 }]);
    const clients = ((list!.data as { clients?: Array<{ username: string; roles?: Array<{ rolename: string }> }>})?.clients ?? []);
    const known = this.ctx.db.prepare("SELECT 1 FROM broker_accounts WHERE device_id = ?");
    for (const c of clients) {
      if (c.username === this.adminUser || !c.roles?.some((r) => r.rolename === deviceRoleName(c.username))) continue;
      if (!known.get(c.username)) await this.remove({ device_id: c.username, key_hash: "", sealed_secret: null });
    }
  }
}
