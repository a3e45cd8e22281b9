// Puts a registered fleet's accounts on Mosquitto before it starts, in the state the server's own dynamic-security
// provisioning (server-stub/mqtt/provisioning.ts) leaves them: per device a client (its id, its API key as password)
// with the role `ota-device-ID` and the same ACLs, and in the database a broker_accounts row whose key is confirmed
// (sealed_secret NULL). Why not let the server push them: Mosquitto 2.0 rewrites its whole dynamic-security file
// after every command, so provisioning is quadratic (measured: ~90 ms a device at 3,000, ~25 min for 10,000).
import { pbkdf2Sync, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import type { Db } from "../server-stub/db";
import { deviceAcls, deviceRoleName, recordDeviceKey, Sealer } from "../server-stub/mqtt/provisioning";

export interface DeviceKey {
  id: string;
  apiKey: string;
}

/** Mosquitto 2's dynamic-security password hash: PBKDF2-HMAC-SHA512 over the password, 12-byte salt, 101 rounds. */
export function dynsecPassword(password: string, salt = randomBytes(12), iterations = 101) {
  return { password: pbkdf2Sync(password, salt, iterations, 64, "sha512").toString("base64"), salt: salt.toString("base64"), iterations };
}

/** Adds every device's client and role to a dynamic-security file made by `mosquitto_ctrl dynsec init` (broker stopped). */
export function addDevicesToDynsecFile(file: string, devices: readonly DeviceKey[]): void {
  const config = JSON.parse(readFileSync(file, "utf8")) as { clients: unknown[]; roles: unknown[] };
  for (const d of devices) {
    const rolename = deviceRoleName(d.id);
    config.roles.push({ rolename, acls: deviceAcls(d.id).map((a) => ({ ...a, priority: 0 })) });
    config.clients.push({ username: d.id, roles: [{ rolename }], ...dynsecPassword(d.apiKey) });
  }
  writeFileSync(file, JSON.stringify(config));
}

/** The database side: each device's key recorded as the server records it, then confirmed as after a push. */
export function confirmBrokerAccounts(db: Db, devices: readonly DeviceKey[], now = Date.now()): void {
  const sealer = new Sealer(randomBytes(32).toString("hex")); // the sealed copy is cleared at once: any secret does
  const confirm = db.prepare("UPDATE broker_accounts SET sealed_secret = NULL WHERE device_id = ?");
  db.transaction(() => {
    for (const d of devices) {
      recordDeviceKey(db, sealer, d.id, d.apiKey, now);
      confirm.run(d.id);
    }
  })();
}
