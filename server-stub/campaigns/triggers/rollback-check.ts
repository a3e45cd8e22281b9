// A rollback the server cannot do, found before the campaign starts: with auto_rollback, each target device's
// firmware (what a rollback would go back to) must be in the catalogue.
import type { Db } from "../../db";
import { getDevice } from "../../model/devices";
import { findFirmwareByVersion, getFirmware } from "../../model/firmware";

export interface RollbackWarning {
  code: "ROLLBACK_IMPOSSIBLE";
  message: string;
  missing_versions: string[];
  devices: string[];
}

export function rollbackWarning(db: Db, targets: string[], releaseVersion: string | null): RollbackWarning | null {
  const missing = new Map<string, string[]>();
  for (const id of targets) {
    const d = getDevice(db, id);
    const version = d?.current_version ?? null;
    if (version === releaseVersion && version !== null) continue; // already on the release: nothing to undo
    if (d?.current_firmware_id && getFirmware(db, d.current_firmware_id)) continue;
    if (version && findFirmwareByVersion(db, version, d?.device_model ?? null)) continue;
    const key = version ?? "(unknown)";
    missing.set(key, [...(missing.get(key) ?? []), id]);
  }
  if (missing.size === 0) return null;
  const versions = [...missing.keys()];
  const devices = [...missing.values()].flat();
  return {
    code: "ROLLBACK_IMPOSSIBLE",
    message: `auto_rollback cannot take ${devices.length} device(s) back: no stored firmware for version(s) ${versions.join(", ")}; upload them first`,
    missing_versions: versions,
    devices: devices.slice(0, 100),
  };
}
