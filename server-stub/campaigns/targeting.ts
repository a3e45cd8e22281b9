// Who a campaign targets and in what order. A target_filter is evaluated live (at the start, for the
// preview, and on every engine tick while the campaign runs, so devices registered later join), and the
// targets are ordered by a seeded sample spread over groups and hardware versions, so a canary or the
// first batch is a fair cut of the fleet rather than the start of a list.
import { DEVICE_MODEL_MAX, HARDWARE_VERSION_MAX, VERSION_MAX, versionInRange } from "../../device/protocol";
import type { Db } from "../db";
import { deviceGroups, deviceTagsSchema, tagsOf, type DeviceRow } from "../model/devices";

/** Every field that is set must match; groups and current_versions match when any entry does, tags when all do
 * (a device must carry every tag listed: "site:berlin" and "beta" picks the Berlin beta boards). */
export interface TargetFilter {
  device_model?: string;
  min_hardware_version?: string;
  max_hardware_version?: string;
  groups?: string[];
  current_versions?: string[];
  tags?: string[];
}

const str = (max: number) => ({ type: "string", minLength: 1, maxLength: max });
export const targetFilterSchema = {
  type: ["object", "null"],
  additionalProperties: false,
  minProperties: 1,
  properties: {
    device_model: str(DEVICE_MODEL_MAX),
    min_hardware_version: str(HARDWARE_VERSION_MAX),
    max_hardware_version: str(HARDWARE_VERSION_MAX),
    groups: { type: "array", minItems: 1, maxItems: 100, items: str(128) },
    current_versions: { type: "array", minItems: 1, maxItems: 100, items: str(VERSION_MAX) },
    tags: { ...deviceTagsSchema, minItems: 1 },
  },
};

export function matchesFilter(f: TargetFilter, d: DeviceRow, groups: () => string[]): boolean {
  if (f.device_model !== undefined && d.device_model !== f.device_model) return false;
  if (f.min_hardware_version !== undefined || f.max_hardware_version !== undefined) {
    if (d.hardware_version === null || !versionInRange(d.hardware_version, f.min_hardware_version, f.max_hardware_version)) return false;
  }
  if (f.current_versions !== undefined && (d.current_version === null || !f.current_versions.includes(d.current_version))) return false;
  if (f.tags !== undefined) {
    const have = tagsOf(d);
    if (!f.tags.every((t) => have.includes(t))) return false;
  }
  if (f.groups !== undefined && !groups().some((g) => f.groups!.includes(g))) return false;
  return true;
}

/** Registered devices matching the filter, by id; `notIn` leaves out the members of that campaign. */
export function filterMatches(db: Db, f: TargetFilter, notIn?: string): string[] {
  const rows = (notIn === undefined
    ? db.prepare("SELECT * FROM devices WHERE registered = 1 ORDER BY device_id").all()
    : db.prepare("SELECT * FROM devices d WHERE registered = 1 AND NOT EXISTS (SELECT 1 FROM campaign_devices cd WHERE cd.campaign_id = ? AND cd.device_id = d.device_id) ORDER BY device_id").all(notIn)) as DeviceRow[];
  return rows.filter((d) => matchesFilter(f, d, () => deviceGroups(db, d.device_id))).map((d) => d.device_id);
}

/** A uniform number in [0, 1) from the seed and a key (FNV-1a, then a murmur finaliser): same inputs, same number. */
export function seededUnit(seed: string, key: string): number {
  let h = 0x811c9dc5;
  const s = `${seed}\u0000${key}`;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 0x100000000;
}

/** The stratum a device is sampled in: its groups and hardware version. */
export function stratumOf(db: Db, id: string): string {
  const hw = (db.prepare("SELECT hardware_version FROM devices WHERE device_id = ?").get(id) as { hardware_version: string | null } | undefined)?.hardware_version;
  return `${deviceGroups(db, id).join(",")}|${hw ?? ""}`;
}

/**
 * Seeded systematic sampling: each stratum is shuffled, and its k-th of n devices gets the position
 * (k + offset) / n, with a seeded offset per stratum. Sorting by position spreads every stratum evenly
 * over the order, so any prefix (the canary, the rollout slice, the first batch) holds each stratum in
 * proportion, give or take one device.
 */
export function spreadOrder(ids: string[], seed: string, stratum: (id: string) => string): string[] {
  const strata = new Map<string, string[]>();
  for (const id of ids) {
    const key = stratum(id);
    strata.set(key, [...(strata.get(key) ?? []), id]);
  }
  const placed: Array<{ id: string; at: number; tie: number }> = [];
  for (const [key, members] of strata) {
    const shuffled = [...members].sort((a, b) => seededUnit(seed, a) - seededUnit(seed, b) || (a < b ? -1 : 1));
    const offset = seededUnit(seed, `stratum:${key}`);
    shuffled.forEach((id, k) => placed.push({ id, at: (k + offset) / shuffled.length, tie: seededUnit(seed, `tie:${id}`) }));
  }
  return placed.sort((a, b) => a.at - b.at || a.tie - b.tie).map((p) => p.id);
}

/** Whether a device that joins a running campaign falls in its rollout_percentage (the same seeded draw every tick). */
export function admittedToRollout(seed: string, id: string, percentage: number): boolean {
  return percentage >= 100 || seededUnit(seed, `rollout:${id}`) * 100 < percentage;
}
