// Device records. Unknown ids referenced by an update or campaign get a "waiting"
// record (registered = 0) that fills in when the device registers or calls in.
import { isValidDeviceId } from "../../device/protocol";
import { badRequest } from "../api-error";
import { iso } from "../clock";
import { json, type Db } from "../db";
import { deviceEvent } from "../events/emit";
import { ACTIVE_IN } from "./updates";

export interface DeviceRow {
  device_id: string;
  registered: number;
  device_model: string | null;
  hardware_version: string | null;
  chip_id: number | null;
  secure_version: number | null;
  current_version: string | null;
  current_firmware_id: string | null;
  previous_version: string | null;
  previous_firmware_id: string | null;
  last_contact_at: number | null;
  /** JSON array of the operator's tags, sorted; NULL when never tagged. */
  tags: string | null;
  /** SHA-256 of the image the device last said it runs (its delta base); NULL when never said. */
  running_sha256: string | null;
  created_at: number;
  updated_at: number;
}

export function assertDeviceId(id: string): void {
  if (!isValidDeviceId(id)) throw badRequest(`invalid device id ${JSON.stringify(id)}: use 1-128 of A-Z a-z 0-9 . _ : -`, "INVALID_DEVICE_ID");
}

export function getDevice(db: Db, id: string): DeviceRow | undefined {
  return db.prepare("SELECT * FROM devices WHERE device_id = ?").get(id) as DeviceRow | undefined;
}

/** Returns the device, creating a waiting record for an unknown id. */
export function ensureDevice(db: Db, id: string, now: number): DeviceRow {
  assertDeviceId(id);
  const known = getDevice(db, id); // read first: every device check comes here, and a write costs more than a read
  if (known) return known;
  db.prepare("INSERT INTO devices(device_id, registered, created_at, updated_at) VALUES (?, 0, ?, ?) ON CONFLICT DO NOTHING").run(id, now, now);
  return getDevice(db, id)!;
}

export interface DeviceReport {
  current_version?: string | undefined;
  device_model?: string | undefined;
  hardware_version?: string | undefined;
  chip_id?: number | undefined;
  secure_version?: number | undefined;
}

/** last_contact_at is kept to this resolution: a device polling again sooner, reporting nothing new, costs no write.
 * Devices poll every 60 s (±20 %), so each of their polls is still written; the dashboard's "online" needs 3 min. */
export const CONTACT_RESOLUTION_MS = 30_000;

type ContactFields = Pick<DeviceRow, "current_version" | "device_model" | "hardware_version" | "chip_id" | "secure_version" | "last_contact_at">;

const reportsNothingNew = (d: ContactFields, r: DeviceReport) =>
  (r.current_version === undefined || r.current_version === d.current_version) && (r.device_model === undefined || r.device_model === d.device_model) &&
  (r.hardware_version === undefined || r.hardware_version === d.hardware_version) && (r.chip_id === undefined || r.chip_id === d.chip_id) &&
  (r.secure_version === undefined || r.secure_version === d.secure_version);

/** Whether recordContact would write: the report says something new, or the last contact is a resolution old. */
export function contactIsNews(before: ContactFields, r: DeviceReport, now: number): boolean {
  const sinceLast = before.last_contact_at === null ? Infinity : now - before.last_contact_at;
  return !(sinceLast >= 0 && sinceLast < CONTACT_RESOLUTION_MS && reportsNothingNew(before, r));
}

/** Records what a device says about itself on contact. Returns the device as it was before this contact. */
export function recordContact(db: Db, id: string, r: DeviceReport, now: number): DeviceRow {
  const before = ensureDevice(db, id, now);
  if (!contactIsNews(before, r, now)) return before;
  if (r.current_version && r.current_version !== before.current_version) {
    deviceEvent(db, id, now, "version_changed", { from_version: before.current_version, to_version: r.current_version, reported: true });
  }
  // A new version forgets the firmware id. COALESCE(?, col) rather than `? IS NOT NULL`: PostgreSQL cannot type a bare parameter.
  const v = r.current_version ?? null;
  db.prepare(
    `UPDATE devices SET last_contact_at = ?, updated_at = ?,
       current_firmware_id = CASE WHEN COALESCE(?, current_version) IS DISTINCT FROM current_version THEN NULL ELSE current_firmware_id END,
       current_version = COALESCE(?, current_version), device_model = COALESCE(?, device_model),
       hardware_version = COALESCE(?, hardware_version), chip_id = COALESCE(?, chip_id),
       secure_version = COALESCE(?, secure_version)
     WHERE device_id = ?`,
  ).run(now, now, v, v, r.device_model ?? null, r.hardware_version ?? null, r.chip_id ?? null, r.secure_version ?? null, id);
  return before;
}

export function deviceGroups(db: Db, id: string): string[] {
  return (db.prepare("SELECT group_name FROM group_members WHERE device_id = ? ORDER BY group_name").all(id) as { group_name: string }[]).map((r) => r.group_name);
}

/** Operator tags on a device (ours, not the HOWTO's): short plain-ASCII words such as "site:berlin" or "beta",
 * so a target filter means the same thing to whoever types it. */
export const DEVICE_TAGS_MAX = 32;
export const DEVICE_TAG_MAX = 64;
export const deviceTagSchema = { type: "string", minLength: 1, maxLength: DEVICE_TAG_MAX, pattern: "^[A-Za-z0-9_.:=-]+$" };
export const deviceTagsSchema = { type: "array", maxItems: DEVICE_TAGS_MAX, items: deviceTagSchema };

export function tagsOf(d: Pick<DeviceRow, "tags">): string[] {
  return json.parse<string[]>(d.tags, []);
}

/** Replaces a device's tags (deduplicated, sorted); records a device.updated event when they change. */
export function setDeviceTags(db: Db, id: string, tags: string[], now: number): void {
  const before = getDevice(db, id);
  const next = [...new Set(tags)].sort();
  if (!before || JSON.stringify(tagsOf(before)) === JSON.stringify(next)) return;
  db.prepare("UPDATE devices SET tags = ?, updated_at = ? WHERE device_id = ?").run(JSON.stringify(next), now, id);
  deviceEvent(db, id, now, "updated", { tags: next, previous_tags: tagsOf(before) });
}

export function deviceToApi(db: Db, d: DeviceRow) {
  const current = db
    .prepare(`SELECT update_id, status, to_version, progress FROM updates WHERE device_id = ? AND status IN ${ACTIVE_IN} ORDER BY created_at DESC, rowid DESC LIMIT 1`)
    .get(d.device_id) as { update_id: string; status: string; to_version: string; progress: number } | undefined;
  return {
    device_id: d.device_id,
    status: d.registered ? "registered" : "waiting",
    device_model: d.device_model,
    hardware_version: d.hardware_version,
    chip_id: d.chip_id,
    secure_version: d.secure_version,
    current_version: d.current_version,
    current_firmware_id: d.current_firmware_id,
    previous_version: d.previous_version,
    groups: deviceGroups(db, d.device_id),
    tags: tagsOf(d),
    last_contact_at: iso(d.last_contact_at),
    created_at: iso(d.created_at),
    current_update: current
      ? { update_id: current.update_id, status: current.status, to_version: current.to_version, progress_percentage: current.progress }
      : null,
  };
}

export const deviceSchema = {
  type: "object",
  properties: {
    device_id: { type: "string" },
    status: { type: "string", enum: ["registered", "waiting"] },
    device_model: { type: ["string", "null"] },
    hardware_version: { type: ["string", "null"] },
    chip_id: { type: ["integer", "null"] },
    secure_version: { type: ["integer", "null"] },
    current_version: { type: ["string", "null"] },
    current_firmware_id: { type: ["string", "null"] },
    previous_version: { type: ["string", "null"] },
    groups: { type: "array", items: { type: "string" } },
    tags: { type: "array", items: { type: "string" } },
    last_contact_at: { type: ["string", "null"] },
    created_at: { type: ["string", "null"] },
    current_update: {
      type: ["object", "null"],
      properties: {
        update_id: { type: "string" }, status: { type: "string" }, to_version: { type: "string" }, progress_percentage: { type: "number" },
      },
    },
  },
};
