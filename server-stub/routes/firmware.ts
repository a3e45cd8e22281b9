import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { base64Encode, ROUTES } from "../../device/protocol";
import { ApiError, badRequest, forbidden, notFound } from "../api-error";
import { principalOf } from "../auth/hook";
import { DEVICE_FACING, READERS, WRITERS } from "../auth/principal";
import { bumpCounter, pageOf } from "../db";
import { logEvent } from "../log";
import { getDevice } from "../model/devices";
import { firmwareSchema, firmwareToApi, getFirmware, type FirmwareRow } from "../model/firmware";
import { ACTIVE_IN } from "../model/updates";
import { checkCompatibility } from "../services/compatibility";
import { buildPatchesForUpload, firmwareDeltas, getPatch } from "../services/deltas";
import { readUploadParts, registerFirmware } from "../services/firmware-ingest";
import { authErrors, idParam, paging, type AppDeps } from "./common";
import { parseRange } from "./range";

export const DOWNLOAD_CACHE_CONTROL = "private, max-age=86400";

const fwParam = idParam("firmware_id");

export async function firmwareRoutes(app: FastifyInstance, { ctx }: AppDeps) {
  const pub = () => ctx.config.publicUrl;
  /** A stored blob with Range, ETag and digest headers; counts the bytes served. */
  const sendBlob = (req: FastifyRequest, reply: FastifyReply, b: { sha256: string; size: number; filename: string; delta?: boolean; event: Record<string, string | undefined> }) => {
    const size = b.size;
    const etag = `"${b.sha256}"`;
    // A blob never changes under its SHA-256 (the ETag): caches may keep it. Private by default, since the answer
    // depends on the device's credential; a CDN in front says what it may do (cdn_config).
    reply.header("Cache-Control", ctx.config.cdn?.cache_control ?? DOWNLOAD_CACHE_CONTROL);
    reply.header("Accept-Ranges", "bytes").header("ETag", etag).header("X-Checksum-SHA256", b.sha256)
      .header("Repr-Digest", `sha-256=:${base64Encode(Buffer.from(b.sha256, "hex"))}:`);
    if (req.headers["if-none-match"] === etag) return reply.status(304).send();
    const ifRange = req.headers["if-range"];
    const range = ifRange && ifRange !== etag ? { kind: "full" as const } : parseRange(req.headers.range, size);
    if (range.kind === "unsatisfiable") {
      reply.header("Content-Range", `bytes */${size}`);
      throw new ApiError(416, "RANGE_NOT_SATISFIABLE", `range ${req.headers.range} is outside 0-${size - 1}`);
    }
    if (!ctx.blobs.has(b.sha256)) throw new ApiError(500, "BLOB_MISSING", `stored file ${b.filename} is missing`);
    reply.header("Content-Type", "application/octet-stream").header("Content-Disposition", `attachment; filename="${b.filename}"`);
    const [start, end] = range.kind === "partial" ? [range.start, range.end] : [0, size - 1];
    if (range.kind === "partial") reply.status(206).header("Content-Range", `bytes ${start}-${end}/${size}`);
    reply.header("Content-Length", String(end - start + 1));
    if (req.method === "HEAD") {
      // Headers only, with the real Content-Length (fastify would send 0 for an empty payload).
      reply.hijack();
      reply.raw.writeHead(reply.statusCode, reply.getHeaders() as Record<string, string>);
      reply.raw.end();
      return;
    }
    const stream = ctx.blobs.openRange(b.sha256, start, end);
    let sent = 0;
    stream.on("data", (chunk: Buffer) => (sent += chunk.length));
    // Counted once: at the end of the file (before the client can have it all, so stats never lag a finished
    // download) or, for an aborted one, when the stream closes.
    let counted = false;
    const count = () => {
      if (!counted) bumpCounter(ctx.db, "bytes_served", sent);
      if (!counted && b.delta) bumpCounter(ctx.db, "bytes_served_delta", sent);
      counted = true;
    };
    stream.on("end", count);
    stream.on("close", count);
    logEvent(ctx.log, b.delta ? "patch_download" : "firmware_download", { ...b.event, start, end, size });
    return reply.send(stream);
  };

  /** A device may fetch only firmware currently offered to it. */
  const assertOffered = (deviceId: string | undefined, firmwareId: string) => {
    const offered = ctx.db.prepare(`SELECT 1 FROM updates WHERE device_id = ? AND firmware_id = ? AND status IN ${ACTIVE_IN}`).get(deviceId, firmwareId);
    if (!offered) throw forbidden(`firmware ${firmwareId} is not offered to device ${deviceId}`);
  };

  app.post(ROUTES.firmwareList, {
    config: { roles: WRITERS },
    schema: {
      tags: ["firmware"],
      description: "multipart/form-data: `metadata` (JSON text or file), `file` (the image) and optionally `release_signature` (the file `ota-sign sign` writes). ESP app images (first byte 0xE9) are verified.",
      consumes: ["multipart/form-data"],
      response: { 201: firmwareSchema, ...authErrors, 413: authErrors[400] },
    },
  }, async (req, reply) => {
    if (!req.isMultipart()) throw new ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "use multipart/form-data with parts metadata and file");
    const { meta, upload, filename, releaseSignature } = await readUploadParts(ctx, req.parts());
    const fw = registerFirmware(ctx, meta, upload, filename, releaseSignature);
    buildPatchesForUpload(ctx, fw);
    return reply.status(201).send({ ...firmwareToApi(fw, pub()), ...firmwareDeltas(ctx, fw) });
  });

  app.get(ROUTES.firmwareList, {
    config: { roles: READERS },
    schema: {
      tags: ["firmware"],
      querystring: { type: "object", properties: { ...paging, device_model: { type: "string", maxLength: 128 } } },
      response: { 200: { type: "object", properties: { firmware: { type: "array", items: firmwareSchema }, total: { type: "integer" }, limit: { type: "integer" }, offset: { type: "integer" } } }, ...authErrors },
    },
  }, async (req) => {
    const q = req.query as { limit: number; offset: number; device_model?: string };
    const where = q.device_model ? "WHERE device_model = ?" : "";
    const args = q.device_model ? [q.device_model] : [];
    const { rows, total } = pageOf<FirmwareRow>(ctx.db, `firmware ${where}`, "created_at DESC, rowid DESC", args, q.limit, q.offset);
    return { firmware: rows.map((f) => firmwareToApi(f, pub())), total, limit: q.limit, offset: q.offset };
  });

  app.get(ROUTES.firmware, {
    config: { roles: READERS },
    schema: { tags: ["firmware"], params: fwParam, response: { 200: firmwareSchema, ...authErrors } },
  }, async (req) => {
    const { firmware_id } = req.params as { firmware_id: string };
    const fw = getFirmware(ctx.db, firmware_id);
    if (!fw) throw notFound("firmware", firmware_id);
    return { ...firmwareToApi(fw, pub()), ...firmwareDeltas(ctx, fw) };
  });

  app.get(ROUTES.firmwareDownload, {
    config: { roles: [...READERS, ...DEVICE_FACING] },
    schema: {
      tags: ["firmware", "device-facing"], params: fwParam,
      description: "Streams the image. Single `Range: bytes=` requests get 206 with Content-Range; unsatisfiable ranges 416.",
      response: { ...authErrors, 416: authErrors[400] },
    },
  }, async (req, reply) => {
    const { firmware_id } = req.params as { firmware_id: string };
    const fw = getFirmware(ctx.db, firmware_id);
    if (!fw) throw notFound("firmware", firmware_id);
    const p = principalOf(req);
    if (p.role === "device") assertOffered(p.device_id, firmware_id);
    return sendBlob(req, reply, { sha256: fw.checksum_sha256, size: fw.file_size, filename: `${fw.firmware_id}.bin`, event: { device_id: p.device_id, firmware_id } });
  });

  app.get(ROUTES.firmwarePatch, {
    config: { roles: [...READERS, ...DEVICE_FACING] },
    schema: {
      tags: ["firmware", "device-facing"], params: { ...fwParam, properties: { ...fwParam.properties, base_sha256: { type: "string", pattern: "^[0-9a-f]{64}$" } }, required: ["firmware_id", "base_sha256"] },
      description: "Streams the delta patch that rebuilds the firmware from the image with SHA-256 base_sha256 (device/protocol/DELTA.md). Range as for downloads.",
      response: { ...authErrors, 416: authErrors[400] },
    },
  }, async (req, reply) => {
    const { firmware_id, base_sha256 } = req.params as { firmware_id: string; base_sha256: string };
    const fw = getFirmware(ctx.db, firmware_id);
    if (!fw) throw notFound("firmware", firmware_id);
    const p = principalOf(req);
    if (p.role === "device") assertOffered(p.device_id, firmware_id);
    const patch = getPatch(ctx, base_sha256, fw.checksum_sha256);
    if (patch?.status !== "ready" || !patch.patch_sha256 || !patch.patch_size) throw new ApiError(404, "PATCH_NOT_FOUND", `no delta patch to ${firmware_id} from image ${base_sha256}`);
    return sendBlob(req, reply, { sha256: patch.patch_sha256, size: patch.patch_size, filename: `${fw.firmware_id}.patch`, delta: true, event: { device_id: p.device_id, firmware_id, base_sha256 } });
  });

  app.post(ROUTES.compatibilityCheck, {
    config: { roles: READERS },
    schema: {
      tags: ["firmware"], params: fwParam,
      body: { type: "object", additionalProperties: false, required: ["device_ids"], properties: { device_ids: { type: "array", minItems: 1, maxItems: 10000, items: { type: "string", minLength: 1, maxLength: 128 } } } },
      response: {
        200: {
          type: "object",
          properties: {
            firmware_id: { type: "string" }, version: { type: "string" }, compatible_count: { type: "integer" }, incompatible_count: { type: "integer" },
            results: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  device_id: { type: "string" }, known: { type: "boolean" }, compatible: { type: "boolean" }, current_version: { type: ["string", "null"] },
                  reasons: { type: "array", items: { type: "object", properties: { code: { type: "string" }, message: { type: "string" } } } },
                  warnings: { type: "array", items: { type: "string" } },
                },
              },
            },
          },
        },
        ...authErrors,
      },
    },
  }, async (req) => {
    const { firmware_id } = req.params as { firmware_id: string };
    const fw = getFirmware(ctx.db, firmware_id);
    if (!fw) throw notFound("firmware", firmware_id);
    const ids = [...new Set((req.body as { device_ids: string[] }).device_ids)];
    if (ids.some((id) => id.includes("/"))) throw badRequest("device ids cannot contain /", "INVALID_DEVICE_ID");
    const results = ids.map((device_id) => {
      const d = getDevice(ctx.db, device_id);
      const c = checkCompatibility(fw, d);
      return { device_id, known: d !== undefined, compatible: c.compatible, current_version: d?.current_version ?? null, reasons: c.reasons, warnings: c.warnings };
    });
    const ok = results.filter((r) => r.compatible).length;
    return { firmware_id, version: fw.version, compatible_count: ok, incompatible_count: results.length - ok, results };
  });
}
