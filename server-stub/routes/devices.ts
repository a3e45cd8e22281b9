import { jsonTextArray, pageOf } from "../db";
import type { FastifyInstance } from "fastify";
import {
  availableUpdatesResponseSchema, CHIP_ID_MAX, commandListSchema, DEVICE_ID_MAX, DEVICE_MODEL_MAX, FIRMWARE_ID_MAX, HARDWARE_VERSION_MAX, ROUTES,
  SECURE_VERSION_MAX, UPDATE_PRIORITIES, VERSION_MAX, type UpdatePriority,
} from "../../device/protocol";
import { ApiError, notFound } from "../api-error";
import { principalOf } from "../auth/hook";
import { assertDeviceScope, DEVICE_FACING, READERS, WRITERS } from "../auth/principal";
import { deviceEvent } from "../events/emit";
import { logEvent } from "../log";
import {
  assertDeviceId, deviceSchema, deviceTagSchema, deviceTagsSchema, deviceToApi, ensureDevice, getDevice, setDeviceTags, type DeviceRow,
} from "../model/devices";
import { addMembers } from "../model/groups";
import { updateSchema, updateToApi, type UpdateRow } from "../model/updates";
import { rollbackDevice } from "../services/rollbacks";
import { availableUpdates, requestDeviceUpdate } from "../services/updates";
import { sendCheckAnswer } from "./check-answer";
import { authErrors, idParam, paging, type AppDeps } from "./common";
import { reachedOrigin } from "./reached-origin";

const commands = { ...commandListSchema, default: [] };
const priority = { type: "string", enum: [...UPDATE_PRIORITIES], default: "normal" };
const deviceParam = idParam("device_id");

export async function deviceRoutes(app: FastifyInstance, { ctx }: AppDeps) {
  app.post(ROUTES.devices, {
    config: { roles: WRITERS },
    schema: {
      tags: ["devices"],
      body: {
        type: "object", additionalProperties: false, required: ["device_id"],
        properties: {
          device_id: { type: "string", minLength: 1, maxLength: DEVICE_ID_MAX },
          device_model: { type: ["string", "null"], maxLength: DEVICE_MODEL_MAX },
          hardware_version: { type: ["string", "null"], maxLength: HARDWARE_VERSION_MAX },
          chip_id: { type: ["integer", "null"], minimum: 0, maximum: CHIP_ID_MAX },
          current_version: { type: ["string", "null"], maxLength: VERSION_MAX },
          groups: { type: "array", maxItems: 64, items: { type: "string", maxLength: 128 }, default: [] },
          tags: deviceTagsSchema,
        },
      },
      response: { 201: { type: "object", properties: { device: deviceSchema, api_key: { type: "string" }, mqtt_username: { type: "string" } } }, ...authErrors },
    },
  }, async (req, reply) => {
    const b = req.body as { device_id: string; device_model?: string | null; hardware_version?: string | null; chip_id?: number | null; current_version?: string | null; groups: string[]; tags?: string[] };
    assertDeviceId(b.device_id);
    const { api_key } = ctx.db.transaction(() => {
      const now = ctx.clock.now();
      const before = ensureDevice(ctx.db, b.device_id, now);
      ctx.db
        .prepare(
          `UPDATE devices SET registered = 1, device_model = COALESCE(?, device_model), hardware_version = COALESCE(?, hardware_version),
             chip_id = COALESCE(?, chip_id), current_version = COALESCE(?, current_version), updated_at = ? WHERE device_id = ?`,
        )
        .run(b.device_model ?? null, b.hardware_version ?? null, b.chip_id ?? null, b.current_version ?? null, now, b.device_id);
      for (const g of b.groups) addMembers(ctx.db, g, [b.device_id], now);
      if (b.tags) setDeviceTags(ctx.db, b.device_id, b.tags, now); // absent: a re-registration keeps the operator's tags
      const d = getDevice(ctx.db, b.device_id)!;
      deviceEvent(ctx.db, b.device_id, now, before.registered ? "updated" : "registered", {
        device_model: d.device_model, hardware_version: d.hardware_version, current_version: d.current_version, groups: b.groups, rekeyed: true,
      });
      return ctx.apiKeys.create("device", { device_id: b.device_id }); // re-keying revokes the old key
    })();
    logEvent(ctx.log, "device_registered", { device_id: b.device_id, by: principalOf(req).subject });
    return reply.status(201).send({ device: deviceToApi(ctx.db, getDevice(ctx.db, b.device_id)!), api_key, mqtt_username: b.device_id });
  });

  app.get(ROUTES.devices, {
    config: { roles: READERS },
    schema: {
      tags: ["devices"],
      querystring: { type: "object", properties: { ...paging, device_model: { type: "string", maxLength: 128 }, group: { type: "string", maxLength: 128 }, tag: deviceTagSchema } },
      response: { 200: { type: "object", properties: { devices: { type: "array", items: deviceSchema }, total: { type: "integer" } } }, ...authErrors },
    },
  }, async (req) => {
    const q = req.query as { limit: number; offset: number; device_model?: string; group?: string; tag?: string };
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.device_model) (where.push("device_model = ?"), args.push(q.device_model));
    if (q.group) (where.push("device_id IN (SELECT device_id FROM group_members WHERE group_name = ?)"), args.push(q.group));
    if (q.tag) (where.push(`EXISTS (SELECT 1 FROM ${jsonTextArray(ctx.db, "devices.tags")} WHERE value = ?)`), args.push(q.tag));
    const w = where.length ? `WHERE ${where.join(" AND ")}` : "";
    const { rows, total } = pageOf<DeviceRow>(ctx.db, `devices ${w}`, "device_id", args, q.limit, q.offset);
    return { devices: rows.map((d) => deviceToApi(ctx.db, d)), total };
  });

  app.get(ROUTES.device, {
    config: { roles: READERS },
    schema: { tags: ["devices"], params: deviceParam, response: { 200: deviceSchema, ...authErrors } },
  }, async (req) => {
    const { device_id } = req.params as { device_id: string };
    const d = getDevice(ctx.db, device_id);
    if (!d) throw notFound("device", device_id);
    return deviceToApi(ctx.db, d);
  });

  // The operator's tags (target_filter.tags picks devices by them): the whole list, replaced.
  app.patch(ROUTES.device, {
    config: { roles: WRITERS },
    schema: {
      tags: ["devices"], params: deviceParam,
      body: { type: "object", additionalProperties: false, required: ["tags"], properties: { tags: deviceTagsSchema } },
      response: { 200: deviceSchema, ...authErrors },
    },
  }, async (req) => {
    const { device_id } = req.params as { device_id: string };
    const { tags } = req.body as { tags: string[] };
    if (!getDevice(ctx.db, device_id)) throw notFound("device", device_id);
    setDeviceTags(ctx.db, device_id, tags, ctx.clock.now());
    logEvent(ctx.log, "device_tagged", { device_id, tags: tags.join(","), by: principalOf(req).subject });
    return deviceToApi(ctx.db, getDevice(ctx.db, device_id)!);
  });

  app.get(ROUTES.availableUpdates, {
    config: { roles: DEVICE_FACING },
    schema: {
      tags: ["device-facing"],
      params: deviceParam,
      querystring: {
        type: "object", additionalProperties: false,
        properties: {
          current_version: { type: "string", maxLength: VERSION_MAX }, device_model: { type: "string", maxLength: DEVICE_MODEL_MAX },
          hardware_version: { type: "string", maxLength: HARDWARE_VERSION_MAX },
          chip_id: { type: "integer", minimum: 0, maximum: CHIP_ID_MAX }, secure_version: { type: "integer", minimum: 0, maximum: SECURE_VERSION_MAX },
          running_sha256: { type: "string", minLength: 64, maxLength: 64, pattern: "^[0-9a-f]{64}$" },
        },
      },
      response: { 200: availableUpdatesResponseSchema, ...authErrors },
    },
  }, async (req, reply) => {
    const { device_id } = req.params as { device_id: string };
    assertDeviceId(device_id);
    assertDeviceScope(principalOf(req), device_id);
    const q = req.query as { current_version?: string; device_model?: string; hardware_version?: string; chip_id?: number; secure_version?: number; running_sha256?: string };
    return sendCheckAnswer(reply, availableUpdates(ctx, device_id, q, reachedOrigin(req)));
  });

  app.post(ROUTES.deviceUpdate, {
    config: { roles: WRITERS },
    schema: {
      tags: ["updates"],
      params: deviceParam,
      body: {
        type: "object", additionalProperties: false, required: ["firmware_id"],
        properties: {
          firmware_id: { type: "string", minLength: 1, maxLength: FIRMWARE_ID_MAX }, priority, force: { type: "boolean", default: false },
          pre_update_commands: commands, post_update_commands: commands,
          max_retries: { type: "integer", minimum: 0, maximum: 20 }, timeout_minutes: { type: "integer", minimum: 1, maximum: 525600 },
          create_missing: { type: "boolean", default: false },
        },
      },
      response: { 201: updateSchema, ...authErrors },
    },
  }, async (req, reply) => {
    const { device_id } = req.params as { device_id: string };
    const u = requestDeviceUpdate(ctx, device_id, req.body as Parameters<typeof requestDeviceUpdate>[2]);
    return reply.status(201).send(updateToApi(u));
  });

  app.get(ROUTES.deviceUpdates, {
    config: { roles: READERS },
    schema: {
      tags: ["updates"], params: deviceParam, querystring: { type: "object", properties: { ...paging } },
      response: { 200: { type: "object", properties: { device_id: { type: "string" }, updates: { type: "array", items: updateSchema }, total: { type: "integer" } } }, ...authErrors },
    },
  }, async (req) => {
    const { device_id } = req.params as { device_id: string };
    const q = req.query as { limit: number; offset: number };
    if (!getDevice(ctx.db, device_id)) throw notFound("device", device_id);
    const { rows, total } = pageOf<UpdateRow>(ctx.db, "updates WHERE device_id = ?", "created_at DESC, rowid DESC", [device_id], q.limit, q.offset);
    return { device_id, updates: rows.map(updateToApi), total };
  });

  app.post(ROUTES.deviceRollback, {
    config: { roles: WRITERS },
    schema: {
      tags: ["updates"], params: deviceParam,
      body: { type: "object", additionalProperties: false, properties: { target_version: { type: "string", minLength: 1, maxLength: VERSION_MAX }, reason: { type: ["string", "null"], maxLength: 1000 } } },
      response: { 201: updateSchema, ...authErrors },
    },
  }, async (req, reply) => {
    const { device_id } = req.params as { device_id: string };
    const b = req.body as { target_version?: string; reason?: string | null };
    return reply.status(201).send(updateToApi(rollbackDevice(ctx, device_id, b.target_version, b.reason ?? null)));
  });

  app.post(ROUTES.bulkUpdate, {
    config: { roles: WRITERS },
    schema: {
      tags: ["updates"],
      body: {
        type: "object", additionalProperties: false, required: ["device_ids", "firmware_id"],
        properties: {
          device_ids: { type: "array", minItems: 1, maxItems: 10000, items: { type: "string", minLength: 1, maxLength: DEVICE_ID_MAX } },
          firmware_id: { type: "string", minLength: 1, maxLength: FIRMWARE_ID_MAX },
          update_config: {
            type: "object", additionalProperties: false, default: {},
            properties: { priority, max_retries: { type: "integer", minimum: 0, maximum: 20, default: 0 }, timeout_minutes: { type: "integer", minimum: 1, maximum: 525600 }, force: { type: "boolean", default: false }, create_missing: { type: "boolean", default: false } },
          },
        },
      },
      response: {
        200: {
          type: "object",
          properties: {
            firmware_id: { type: "string" }, requested: { type: "integer" }, scheduled: { type: "integer" }, rejected: { type: "integer" },
            results: { type: "array", items: { type: "object", properties: { device_id: { type: "string" }, status: { type: "string" }, update_id: { type: ["string", "null"] }, error: { type: ["object", "null"], properties: { code: { type: "string" }, message: { type: "string" } } } } } },
          },
        },
        ...authErrors,
      },
    },
  }, async (req) => {
    const b = req.body as { device_ids: string[]; firmware_id: string; update_config: { priority: UpdatePriority; max_retries: number; timeout_minutes?: number; force: boolean; create_missing: boolean } };
    // Per-device outcome: one incompatible or busy device does not fail the others.
    const results = [...new Set(b.device_ids)].map((device_id) => {
      try {
        const u = requestDeviceUpdate(ctx, device_id, { firmware_id: b.firmware_id, priority: b.update_config.priority, force: b.update_config.force, max_retries: b.update_config.max_retries, timeout_minutes: b.update_config.timeout_minutes, create_missing: b.update_config.create_missing });
        return { device_id, status: "scheduled", update_id: u.update_id, error: null };
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        if (e.code === "FIRMWARE_NOT_FOUND") throw e; // nothing can succeed
        return { device_id, status: "rejected", update_id: null, error: { code: e.code, message: e.message } };
      }
    });
    const scheduled = results.filter((r) => r.status === "scheduled").length;
    return { firmware_id: b.firmware_id, requested: results.length, scheduled, rejected: results.length - scheduled, results };
  });
}
