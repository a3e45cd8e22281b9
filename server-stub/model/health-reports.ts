// Device health reports, stored per device and per update (the update whose soak window they belong to).
import type { HealthReport } from "../../device/protocol";
import type { Db } from "../db";
import { json } from "../db";

/** A stored report: the protocol's body (one definition) as the server keeps it, per device, with its arrival time. */
export type HealthRow = Omit<HealthReport, "sequence" | "timestamp" | "reset_reason"> & {
  device_id: string;
  /** As the device said it (a newer agent may name a reason this server does not know). */
  reset_reason: string;
  received_at: number;
};

/** Stores a report; false when its sequence was stored already (a report resent after a power cut). */
export function storeHealthReport(db: Db, deviceId: string, r: HealthReport, now: number): boolean {
  const res = db
    .prepare(
      `INSERT INTO health_reports(device_id, update_id, version, reset_reason, uptime_s, free_heap, min_free_heap, crash_reboots,
         checks, metrics, sequence, device_timestamp, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING`,
    )
    .run(
      deviceId, r.update_id ?? null, r.version, r.reset_reason, r.uptime_s, r.free_heap ?? null, r.min_free_heap ?? null, r.crash_reboots,
      JSON.stringify(r.checks ?? {}), JSON.stringify(r.metrics ?? {}), r.sequence ?? null, r.timestamp ?? null, now,
    );
  return res.changes === 1;
}

type RawRow = Omit<HealthRow, "checks" | "metrics"> & { checks: string; metrics: string };
const parse = (r: RawRow): HealthRow => ({ ...r, checks: json.parse(r.checks, {}), metrics: json.parse(r.metrics, {}) });

/** Reports for one update received in [from, to]. */
export function healthReportsForUpdate(db: Db, updateId: string, from: number, to: number): HealthRow[] {
  return (db.prepare("SELECT * FROM health_reports WHERE update_id = ? AND received_at BETWEEN ? AND ? ORDER BY received_at").all(updateId, from, to) as RawRow[]).map(parse);
}

/** Reports of a device running `version`, received in [from, to] (a baseline: devices not on the release). */
export function healthReportsOfVersion(db: Db, deviceId: string, version: string, from: number, to: number): HealthRow[] {
  return (db.prepare("SELECT * FROM health_reports WHERE device_id = ? AND version = ? AND received_at BETWEEN ? AND ? ORDER BY received_at").all(deviceId, version, from, to) as RawRow[]).map(parse);
}

export function healthReportsForDevice(db: Db, deviceId: string, limit: number): HealthRow[] {
  return (db.prepare("SELECT * FROM health_reports WHERE device_id = ? ORDER BY received_at DESC, id DESC LIMIT ?").all(deviceId, limit) as RawRow[]).map(parse);
}
