// What a device check reads, in one statement: the device, its active update, that update's firmware, the key
// list's version and the signing keys in use. Each statement pays its own locking (SQLite) or round trip
// (PostgreSQL), and under load that, not the lookups, is what a check costs; one statement is also one consistent
// snapshot, so the check needs no transaction unless it writes.
import { SIGNATURE_ALGORITHMS } from "../../device/protocol";
import type { Db } from "../db";
import { ACTIVE_IN, type UpdateRow } from "../model/updates";
import type { DeviceRow } from "../model/devices";
import type { FirmwareRow } from "../model/firmware";

/** The update columns a manifest is made of (manifest.ts), and those the check may correct. */
export type CheckUpdate = Pick<
  UpdateRow,
  "update_id" | "device_id" | "firmware_id" | "from_version" | "patch_size" | "rollback" | "mandatory" | "priority" | "pre_update_commands" | "post_update_commands"
>;
/** The firmware columns a manifest is made of. */
export type CheckFirmware = Pick<
  FirmwareRow,
  | "firmware_id" | "version" | "file_size" | "checksum_sha256" | "device_model" | "min_hardware_version" | "max_hardware_version" | "chip_id"
  | "secure_version" | "release_signature" | "release_key_id"
>;
/** The device columns a contact compares with the device's report. */
export type CheckDevice = Pick<
  DeviceRow,
  "device_id" | "current_version" | "device_model" | "hardware_version" | "chip_id" | "secure_version" | "last_contact_at" | "running_sha256"
>;

export interface CheckSnapshot {
  device: CheckDevice;
  /** null: no active update. */
  update: CheckUpdate | null;
  /** null with an update: its firmware row is missing. */
  firmware: CheckFirmware | null;
  keyListVersion: number | null;
  /** The key id that signs now, per algorithm ("" for none): the same choice as KeyStore.signerIds. */
  signers: string;
}

const DEVICE_COLS = ["device_id", "current_version", "device_model", "hardware_version", "chip_id", "secure_version", "last_contact_at", "running_sha256"] as const;
const UPDATE_COLS = ["update_id", "device_id", "firmware_id", "from_version", "patch_size", "rollback", "mandatory", "priority", "pre_update_commands", "post_update_commands"] as const;
const FIRMWARE_COLS = [
  "firmware_id", "version", "file_size", "checksum_sha256", "device_model", "min_hardware_version", "max_hardware_version", "chip_id", "secure_version",
  "release_signature", "release_key_id",
] as const;

// Same order as activeUpdateFor (model/updates.ts) and KeyStore's newestActiveRows (signing/keystore.ts).
const SIGNER = (alg: string) => `(SELECT key_id FROM signing_keys WHERE retired = 0 AND algorithm = '${alg}' ORDER BY created_at DESC, rowid DESC LIMIT 1)`;
const SQL = `SELECT ${DEVICE_COLS.map((c) => `d.${c} AS d_${c}`).join(", ")},
    ${UPDATE_COLS.map((c) => `u.${c} AS u_${c}`).join(", ")},
    ${FIRMWARE_COLS.map((c) => `f.${c} AS f_${c}`).join(", ")},
    (SELECT version FROM key_list WHERE id = 1) AS key_list_version,
    ${SIGNATURE_ALGORITHMS.map((alg, i) => `${SIGNER(alg)} AS signer_${i}`).join(", ")}
  FROM devices d
  LEFT JOIN updates u ON u.update_id = (
    SELECT update_id FROM updates WHERE device_id = d.device_id AND status IN ${ACTIVE_IN} ORDER BY created_at DESC, rowid DESC LIMIT 1)
  LEFT JOIN firmware f ON f.firmware_id = u.firmware_id
  WHERE d.device_id = ?`;

/** [column, its alias in the row], made once: a key built per check would be hashed per check. */
const aliased = <K extends string>(prefix: string, cols: readonly K[]) => cols.map((c) => [c, prefix + c] as const);
const DEVICE_KEYS = aliased("d_", DEVICE_COLS);
const UPDATE_KEYS = aliased("u_", UPDATE_COLS);
const FIRMWARE_KEYS = aliased("f_", FIRMWARE_COLS);
const SIGNER_KEYS = SIGNATURE_ALGORITHMS.map((_, i) => `signer_${i}`);

function pick<K extends string>(row: Record<string, unknown>, keys: ReadonlyArray<readonly [K, string]>): Record<K, unknown> {
  const out = {} as Record<K, unknown>;
  for (const [c, alias] of keys) out[c] = row[alias];
  return out;
}

/** The snapshot of a known device; undefined for an unknown id. */
export function checkSnapshot(db: Db, deviceId: string): CheckSnapshot | undefined {
  const row = db.prepare(SQL).get(deviceId) as Record<string, unknown> | undefined;
  if (!row) return undefined;
  const update = row.u_update_id === null ? null : (pick(row, UPDATE_KEYS) as CheckUpdate);
  return {
    device: pick(row, DEVICE_KEYS) as CheckDevice,
    update,
    firmware: update && row.f_firmware_id !== null ? (pick(row, FIRMWARE_KEYS) as CheckFirmware) : null,
    keyListVersion: row.key_list_version as number | null,
    signers: SIGNER_KEYS.map((k) => row[k] ?? "").join(","),
  };
}
