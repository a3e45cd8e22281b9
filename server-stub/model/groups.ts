import { badRequest } from "../api-error";
import type { Db } from "../db";
import { ensureDevice } from "./devices";

const GROUP_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export function assertGroupName(name: string): void {
  if (!GROUP_RE.test(name)) throw badRequest(`invalid group name ${JSON.stringify(name)}`, "INVALID_GROUP_NAME");
}

export function ensureGroup(db: Db, name: string, now: number, description?: string | null): void {
  assertGroupName(name);
  db.prepare("INSERT INTO device_groups(name, description, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING").run(name, description ?? null, now);
}

export function addMembers(db: Db, name: string, deviceIds: string[], now: number): void {
  ensureGroup(db, name, now);
  const ins = db.prepare("INSERT INTO group_members(group_name, device_id, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING");
  for (const id of deviceIds) {
    ensureDevice(db, id, now);
    ins.run(name, id, now);
  }
}

export function groupMembers(db: Db, name: string): string[] {
  return (db.prepare("SELECT device_id FROM group_members WHERE group_name = ? ORDER BY added_at, device_id").all(name) as { device_id: string }[]).map(
    (r) => r.device_id,
  );
}

export function groupExists(db: Db, name: string): boolean {
  return db.prepare("SELECT 1 FROM device_groups WHERE name = ?").get(name) !== undefined;
}
