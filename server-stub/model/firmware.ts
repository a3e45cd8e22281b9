import { iso } from "../clock";
import type { Db } from "../db";
import { json } from "../db";

export interface FirmwareRow {
  firmware_id: string;
  name: string;
  version: string;
  description: string | null;
  device_model: string;
  manufacturer: string | null;
  min_hardware_version: string | null;
  max_hardware_version: string | null;
  file_size: number;
  checksum_md5: string;
  checksum_sha256: string;
  tags: string;
  metadata: string;
  is_beta: number;
  is_security_update: number;
  changelog: string | null;
  image_format: "esp-app" | "raw";
  chip_id: number | null;
  secure_version: number;
  project_name: string | null;
  created_at: number;
  release_signature: string | null;
  release_key_id: string | null;
}

export function getFirmware(db: Db, id: string): FirmwareRow | undefined {
  return db.prepare("SELECT * FROM firmware WHERE firmware_id = ?").get(id) as FirmwareRow | undefined;
}

/** Newest firmware with this version, preferring the given model. */
export function findFirmwareByVersion(db: Db, version: string, deviceModel: string | null): FirmwareRow | undefined {
  return db
    .prepare("SELECT * FROM firmware WHERE version = ? ORDER BY (device_model = ?) DESC, created_at DESC LIMIT 1")
    .get(version, deviceModel ?? "") as FirmwareRow | undefined;
}

export function downloadUrl(publicUrl: string, firmwareId: string): string {
  return `${publicUrl}/api/v1/firmware/${encodeURIComponent(firmwareId)}/download`;
}

export function firmwareToApi(f: FirmwareRow, publicUrl: string) {
  return {
    firmware_id: f.firmware_id,
    name: f.name,
    version: f.version,
    description: f.description,
    device_model: f.device_model,
    manufacturer: f.manufacturer,
    min_hardware_version: f.min_hardware_version,
    max_hardware_version: f.max_hardware_version,
    file_size: f.file_size,
    file_url: downloadUrl(publicUrl, f.firmware_id),
    checksum_md5: f.checksum_md5,
    checksum_sha256: f.checksum_sha256,
    tags: json.parse<string[]>(f.tags, []),
    metadata: json.parse<Record<string, unknown>>(f.metadata, {}),
    is_beta: f.is_beta === 1,
    is_security_update: f.is_security_update === 1,
    changelog: f.changelog,
    image_format: f.image_format,
    chip_id: f.chip_id,
    secure_version: f.secure_version,
    project_name: f.project_name,
    release_key_id: f.release_key_id ?? null,
    created_at: iso(f.created_at),
  };
}

const nstr = { type: ["string", "null"] };
export const firmwareSchema = {
  type: "object",
  properties: {
    firmware_id: { type: "string" },
    name: { type: "string" },
    version: { type: "string" },
    description: nstr,
    device_model: { type: "string" },
    manufacturer: nstr,
    min_hardware_version: nstr,
    max_hardware_version: nstr,
    file_size: { type: "integer" },
    file_url: { type: "string" },
    checksum_md5: { type: "string" },
    checksum_sha256: { type: "string" },
    tags: { type: "array", items: { type: "string" } },
    metadata: { type: "object", additionalProperties: true },
    is_beta: { type: "boolean" },
    is_security_update: { type: "boolean" },
    changelog: nstr,
    image_format: { type: "string", enum: ["esp-app", "raw"] },
    chip_id: { type: ["integer", "null"] },
    secure_version: { type: "integer" },
    project_name: nstr,
    release_key_id: nstr,
    created_at: { type: "string" },
    // Single-firmware answers only (upload, GET by id): the patches that rebuild it and what they saved.
    deltas: {
      type: "array",
      items: {
        type: "object",
        properties: {
          from_firmware_id: nstr, base_sha256: { type: "string" }, status: { type: "string" }, patch_size: { type: ["integer", "null"] },
          ratio: { type: ["number", "null"] }, build_ms: { type: "integer" },
        },
      },
    },
    delta_bytes_saved: { type: "integer" },
  },
};
