// Firmware upload: validates the metadata, stores the file by content hash and, for
// ESP app images (first byte 0xE9), verifies the image and takes version, chip id and
// secure_version from it.
import type { MultipartFile, MultipartValue } from "@fastify/multipart";
import { DEVICE_MODEL_MAX, FIRMWARE_ID_MAX, HARDWARE_VERSION_MAX, parseVersion, SECURE_VERSION_MAX, VERSION_MAX } from "../../device/protocol";
import { ApiError, badRequest, conflict } from "../api-error";
import type { Ctx } from "../context";
import { assertJsonDepth } from "../limits/request-limits";
import { logEvent } from "../log";
import { refuseNulStrings } from "../nul-strings";
import { checkReleaseSignature } from "./release-signatures";
import { getFirmware, type FirmwareRow } from "../model/firmware";
import type { StoredUpload } from "../storage/blobs";
import { ESP_IMAGE_MAGIC, verifyEspImageFile } from "../storage/esp-image";

export interface FirmwareMetadata {
  name?: string;
  version?: string;
  description?: string | null;
  device_model: string;
  manufacturer?: string | null;
  min_hardware_version?: string | null;
  max_hardware_version?: string | null;
  tags?: string[];
  metadata?: Record<string, unknown>;
  is_beta?: boolean;
  is_security_update?: boolean;
  changelog?: string | null;
  /** "raw" lets a blob that is not an ESP app image through for an ESP32 model. */
  image_format?: "esp-app" | "raw";
}

/** Models whose firmware is an ESP app image unless the metadata says "raw". */
const ESP32_MODEL_RE = /^esp32/i;
/** metadata.metadata, the free-form part, as JSON text. */
const EXTRA_METADATA_MAX = 16 * 1024;
const EXTRA_METADATA_DEPTH = 8;

const VERSION_RE = new RegExp(`^[0-9A-Za-z][0-9A-Za-z.+_-]{0,${VERSION_MAX - 1}}$`); // fits esp_app_desc_t.version
const STRING_FIELDS = ["name", "version", "description", "device_model", "manufacturer", "min_hardware_version", "max_hardware_version", "changelog"] as const;
// The fields a manifest carries are bounded by device/protocol/limits.ts; the others are the server's own.
const MAX_LEN: Record<string, number> = {
  description: 4096, changelog: 16384, device_model: DEVICE_MODEL_MAX, min_hardware_version: HARDWARE_VERSION_MAX, max_hardware_version: HARDWARE_VERSION_MAX,
};

export function parseMetadata(text: string): FirmwareMetadata {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw badRequest(`metadata is not valid JSON: ${(e as Error).message}`, "INVALID_METADATA");
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw badRequest("metadata must be a JSON object", "INVALID_METADATA");
  refuseNulStrings(raw, "metadata");
  const m = raw as Record<string, unknown>;
  const allowed = new Set<string>([...STRING_FIELDS, "tags", "metadata", "is_beta", "is_security_update", "image_format"]);
  for (const k of Object.keys(m)) if (!allowed.has(k)) throw badRequest(`metadata: unknown field ${k}`, "INVALID_METADATA");
  for (const k of STRING_FIELDS) {
    const v = m[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== "string") throw badRequest(`metadata.${k} must be a string`, "INVALID_METADATA");
    if (v.length > (MAX_LEN[k] ?? 128)) throw badRequest(`metadata.${k} is too long`, "INVALID_METADATA");
  }
  if (typeof m.device_model !== "string" || m.device_model.trim() === "") throw badRequest("metadata.device_model is required", "INVALID_METADATA");
  if (m.version !== undefined && !(typeof m.version === "string" && VERSION_RE.test(m.version))) {
    throw badRequest(`metadata.version must be 1-${VERSION_MAX} characters of 0-9 A-Z a-z . + _ -`, "INVALID_METADATA");
  }
  for (const k of ["min_hardware_version", "max_hardware_version"] as const) {
    const v = m[k];
    // Exactly a version (no surrounding blanks): it goes into manifests as written.
    if (typeof v === "string" && v !== "" && (v !== v.trim() || !parseVersion(v))) throw badRequest(`metadata.${k} is not a version`, "INVALID_METADATA");
  }
  if (m.tags !== undefined && !(Array.isArray(m.tags) && m.tags.length <= 32 && m.tags.every((t) => typeof t === "string" && t.length <= 64))) {
    throw badRequest("metadata.tags must be an array of at most 32 strings", "INVALID_METADATA");
  }
  if (m.metadata !== undefined && (typeof m.metadata !== "object" || m.metadata === null || Array.isArray(m.metadata))) {
    throw badRequest("metadata.metadata must be an object", "INVALID_METADATA");
  }
  if (m.metadata !== undefined) {
    assertJsonDepth(m.metadata, EXTRA_METADATA_DEPTH, "metadata.metadata");
    if (JSON.stringify(m.metadata).length > EXTRA_METADATA_MAX) throw badRequest(`metadata.metadata is over ${EXTRA_METADATA_MAX} bytes`, "METADATA_TOO_LARGE");
  }
  if (m.image_format !== undefined && m.image_format !== "esp-app" && m.image_format !== "raw") {
    throw badRequest('metadata.image_format must be "esp-app" or "raw"', "INVALID_METADATA");
  }
  for (const k of ["is_beta", "is_security_update"] as const) {
    if (m[k] !== undefined && typeof m[k] !== "boolean") throw badRequest(`metadata.${k} must be a boolean`, "INVALID_METADATA");
  }
  return m as unknown as FirmwareMetadata;
}

type Part = MultipartFile | MultipartValue;

/** Reads the multipart body: `metadata` (field or file part) and `file`, in either order. */
export async function readUploadParts(ctx: Ctx, parts: AsyncIterableIterator<Part>): Promise<{ meta: FirmwareMetadata; upload: StoredUpload; filename: string; releaseSignature?: string }> {
  let metaText: string | undefined;
  let releaseSignature: string | undefined;
  let upload: StoredUpload | undefined;
  let filename = "firmware.bin";
  try {
    for await (const part of parts) {
      if (part.type === "file") {
        if (part.fieldname === "metadata") {
          metaText = await readCapped(part, ctx.config.metadataMaxBytes); // `-F metadata=@meta.json` (the HOWTO's CI example)
        } else if (part.fieldname === "release_signature") {
          releaseSignature = await readCapped(part, 1024); // `-F release_signature=@app.bin.sig`
        } else if (part.fieldname === "file") {
          if (upload) throw badRequest("only one file part is allowed", "INVALID_UPLOAD");
          filename = part.filename || filename;
          upload = await ctx.blobs.receive(part.file);
          if (part.file.truncated) throw new ApiError(413, "FILE_TOO_LARGE", `file exceeds the upload limit of ${ctx.config.maxUploadBytes} bytes`);
        } else {
          part.file.resume();
          throw badRequest(`unexpected file part ${part.fieldname}`, "INVALID_UPLOAD");
        }
      } else if (part.fieldname === "metadata") {
        if (part.valueTruncated) throw badRequest("metadata field too large", "INVALID_METADATA");
        metaText = String(part.value);
      } else if (part.fieldname === "release_signature") {
        if (part.valueTruncated) throw badRequest("release_signature field too large", "RELEASE_SIGNATURE_INVALID");
        releaseSignature = String(part.value);
      }
    }
  } catch (e) {
    if (upload) ctx.blobs.discard(upload);
    const code = (e as { code?: string }).code;
    if (code === "FST_REQ_FILE_TOO_LARGE") throw new ApiError(413, "FILE_TOO_LARGE", `file exceeds the upload limit of ${ctx.config.maxUploadBytes} bytes`);
    if (code?.startsWith("FST_")) throw badRequest((e as Error).message, "INVALID_UPLOAD");
    if (e instanceof ApiError || (typeof code === "string" && /^E[A-Z]+$/.test(code))) throw e; // ours, or the disk's (ENOSPC...)
    // The multipart parser's own complaints ("Unexpected end of multipart data", bad part headers): bad input.
    throw badRequest(`malformed multipart body: ${(e as Error).message}`, "INVALID_UPLOAD");
  }
  if (!upload) throw badRequest("multipart part `file` is required", "INVALID_UPLOAD");
  if (metaText === undefined) {
    ctx.blobs.discard(upload);
    throw badRequest("multipart part `metadata` (JSON) is required", "INVALID_METADATA");
  }
  try {
    return { meta: parseMetadata(metaText), upload, filename, ...(releaseSignature !== undefined ? { releaseSignature } : {}) };
  } catch (e) {
    ctx.blobs.discard(upload);
    throw e;
  }
}

/** A metadata file part as text, refused once it grows past `max` bytes (it would otherwise be buffered whole). */
async function readCapped(part: MultipartFile, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of part.file as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      part.file.resume(); // drain the rest so the parser can go on to report
      throw badRequest(`metadata is over ${max} bytes`, "METADATA_TOO_LARGE");
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Verifies (ESP images), stores the blob and inserts the firmware row. */
export function registerFirmware(ctx: Ctx, meta: FirmwareMetadata, upload: StoredUpload, filename: string, releaseSignature?: string): FirmwareRow {
  try {
    if (upload.size === 0) throw badRequest("file is empty", "INVALID_UPLOAD");
    const isEsp = upload.firstByte === ESP_IMAGE_MAGIC;
    if (!isEsp && meta.image_format !== "raw" && (ESP32_MODEL_RE.test(meta.device_model) || meta.image_format === "esp-app")) {
      throw badRequest(`firmware for ${meta.device_model} must be an ESP app image (first byte 0xE9); set metadata.image_format to "raw" for a raw blob`, "IMAGE_INVALID");
    }
    let esp: ReturnType<typeof verifyEspImageFile> | null = null;
    if (isEsp && meta.image_format !== "raw") {
      esp = verifyEspImageFile(upload.tmpPath);
      if (meta.version !== undefined && meta.version !== esp.version) {
        throw badRequest(`metadata version ${meta.version} contradicts the image's esp_app_desc_t version ${esp.version}`, "VERSION_MISMATCH");
      }
      if (esp.secureVersion > SECURE_VERSION_MAX) {
        throw badRequest(`image secure_version ${esp.secureVersion} is above ${SECURE_VERSION_MAX}, which devices accept`, "IMAGE_INVALID");
      }
    }
    const version = meta.version ?? esp?.version;
    if (!version) throw badRequest("metadata.version is required for images that are not ESP app images", "INVALID_METADATA");
    // Devices refuse manifests whose version they cannot compare (device/core/trust.ts), so such firmware is refused here.
    if (!VERSION_RE.test(version) || !parseVersion(version)) throw badRequest(`image version ${JSON.stringify(version)} is not usable`, "INVALID_METADATA");
    const release = checkReleaseSignature(ctx, releaseSignature, { sha256: upload.sha256, version, secure_version: esp?.secureVersion ?? 0, device_model: meta.device_model });
    const dup = ctx.db.prepare("SELECT firmware_id FROM firmware WHERE device_model = ? AND version = ?").get(meta.device_model, version) as { firmware_id: string } | undefined;
    if (dup) throw conflict("FIRMWARE_EXISTS", `firmware ${version} for ${meta.device_model} exists already as ${dup.firmware_id}`);
    const id = pickFirmwareId(ctx, version, meta.device_model);
    ctx.blobs.commit(upload);
    const now = ctx.clock.now();
    ctx.db
      .prepare(
        `INSERT INTO firmware(firmware_id, name, version, description, device_model, manufacturer, min_hardware_version,
           max_hardware_version, file_size, checksum_md5, checksum_sha256, tags, metadata, is_beta, is_security_update,
           changelog, image_format, chip_id, secure_version, project_name, created_at, release_signature, release_key_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id, meta.name ?? esp?.projectName ?? filename, version, meta.description ?? null, meta.device_model, meta.manufacturer ?? null,
        meta.min_hardware_version || null, meta.max_hardware_version || null, upload.size, upload.md5, upload.sha256,
        JSON.stringify(meta.tags ?? []), JSON.stringify(meta.metadata ?? {}), meta.is_beta ? 1 : 0, meta.is_security_update ? 1 : 0,
        meta.changelog ?? null, esp ? "esp-app" : "raw", esp?.chipId ?? null, esp?.secureVersion ?? 0, esp?.projectName ?? null, now,
        release.release_signature, release.release_key_id,
      );
    logEvent(ctx.log, "firmware_uploaded", { firmware_id: id, version, device_model: meta.device_model, size: upload.size, sha256: upload.sha256 });
    return getFirmware(ctx.db, id)!;
  } catch (e) {
    ctx.blobs.discard(upload);
    throw e;
  }
}

/** "fw_v1.2.0" when free (the HOWTO's ids), else model-qualified, else random suffix; never above FIRMWARE_ID_MAX. */
function pickFirmwareId(ctx: Ctx, version: string, model: string): string {
  const room = FIRMWARE_ID_MAX - `fw__v${version}`.length;
  const slug = model.toLowerCase().replace(/[^a-z0-9]+/g, "-").slice(0, room).replace(/^-|-$/g, "");
  const candidates = [`fw_v${version}`, `fw_${slug}_v${version}`];
  for (const c of candidates) if (!getFirmware(ctx.db, c)) return c;
  return `fw_v${version}_${Math.random().toString(16).slice(2, 8)}`;
}
