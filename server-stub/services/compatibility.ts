// Can this firmware go to this device? Only facts the server knows count: a waiting
// device that never reported its model is "compatible, unverified".
import { compareVersions, versionInRange } from "../../device/protocol";
import type { DeviceRow } from "../model/devices";
import type { FirmwareRow } from "../model/firmware";

export type IncompatibilityCode = "MODEL_MISMATCH" | "HARDWARE_OUT_OF_RANGE" | "CHIP_MISMATCH" | "VERSION_NOT_NEWER" | "SECURE_VERSION_TOO_LOW";

export interface Compatibility {
  compatible: boolean;
  reasons: Array<{ code: IncompatibilityCode; message: string }>;
  warnings: string[];
}

export function checkCompatibility(fw: FirmwareRow, d: DeviceRow | undefined, opts: { allowSameOrOlder?: boolean } = {}): Compatibility {
  const reasons: Compatibility["reasons"] = [];
  const warnings: string[] = [];
  if (!d || (!d.device_model && !d.current_version)) warnings.push("device has not reported its model or version yet");
  if (d?.device_model && d.device_model !== fw.device_model) {
    reasons.push({ code: "MODEL_MISMATCH", message: `firmware is for ${fw.device_model}, device is ${d.device_model}` });
  }
  if (d?.hardware_version && (fw.min_hardware_version || fw.max_hardware_version)) {
    if (!versionInRange(d.hardware_version, fw.min_hardware_version, fw.max_hardware_version)) {
      reasons.push({
        code: "HARDWARE_OUT_OF_RANGE",
        message: `hardware ${d.hardware_version} outside ${fw.min_hardware_version ?? "*"}..${fw.max_hardware_version ?? "*"}`,
      });
    }
  }
  if (d?.chip_id !== null && d?.chip_id !== undefined && fw.chip_id !== null && d.chip_id !== fw.chip_id) {
    reasons.push({ code: "CHIP_MISMATCH", message: `image is for chip id ${fw.chip_id}, device reports ${d.chip_id}` });
  }
  if (d?.current_version && !opts.allowSameOrOlder) {
    const c = compareVersions(fw.version, d.current_version);
    if (c === null) warnings.push(`cannot compare versions ${fw.version} and ${d.current_version}`);
    else if (c <= 0) reasons.push({ code: "VERSION_NOT_NEWER", message: `firmware ${fw.version} is not newer than running ${d.current_version}` });
  }
  if (d?.secure_version !== null && d?.secure_version !== undefined && fw.secure_version < d.secure_version) {
    reasons.push({ code: "SECURE_VERSION_TOO_LOW", message: `image secure_version ${fw.secure_version} is below the device's floor ${d.secure_version}` });
  }
  return { compatible: reasons.length === 0, reasons, warnings };
}
