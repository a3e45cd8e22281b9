import { ROUTES } from "../../device/protocol";
import type { FastifyInstance } from "fastify";
import { conflict, notFound } from "../api-error";
import { READERS, WRITERS } from "../auth/principal";
import { iso } from "../clock";
import { addMembers, assertGroupName, ensureGroup, groupExists, groupMembers } from "../model/groups";
import { authErrors, idParam, type AppDeps } from "./common";

const groupSchema = { type: "object", properties: { name: { type: "string" }, description: { type: ["string", "null"] }, device_ids: { type: "array", items: { type: "string" } }, created_at: { type: "string" } } };
const idList = { type: "array", maxItems: 10000, items: { type: "string", minLength: 1, maxLength: 128 }, default: [] };

export async function groupRoutes(app: FastifyInstance, { ctx }: AppDeps) {
  const toApi = (name: string) => {
    const g = ctx.db.prepare("SELECT * FROM device_groups WHERE name = ?").get(name) as { name: string; description: string | null; created_at: number };
    return { name: g.name, description: g.description, device_ids: groupMembers(ctx.db, name), created_at: iso(g.created_at) };
  };

  app.post(ROUTES.groups, {
    config: { roles: WRITERS },
    schema: {
      tags: ["groups"],
      body: { type: "object", additionalProperties: false, required: ["name"], properties: { name: { type: "string", minLength: 1, maxLength: 128 }, description: { type: ["string", "null"], maxLength: 1000 }, device_ids: idList } },
      response: { 201: groupSchema, ...authErrors },
    },
  }, async (req, reply) => {
    const b = req.body as { name: string; description?: string | null; device_ids: string[] };
    assertGroupName(b.name);
    ctx.db.transaction(() => {
      // An empty group may exist already as a placeholder (a campaign named it in target_groups): filling it is fine.
      if (groupExists(ctx.db, b.name) && groupMembers(ctx.db, b.name).length > 0) throw conflict("GROUP_EXISTS", `group ${b.name} exists`);
      ensureGroup(ctx.db, b.name, ctx.clock.now(), b.description);
      if (b.description) ctx.db.prepare("UPDATE device_groups SET description = ? WHERE name = ?").run(b.description, b.name);
      addMembers(ctx.db, b.name, b.device_ids, ctx.clock.now());
    })();
    return reply.status(201).send(toApi(b.name));
  });

  app.get(ROUTES.groups, {
    config: { roles: READERS },
    schema: { tags: ["groups"], response: { 200: { type: "object", properties: { groups: { type: "array", items: groupSchema } } }, ...authErrors } },
  }, async () => ({ groups: (ctx.db.prepare("SELECT name FROM device_groups ORDER BY name").all() as { name: string }[]).map((g) => toApi(g.name)) }));

  app.get(ROUTES.group, {
    config: { roles: READERS },
    schema: { tags: ["groups"], params: idParam("name"), response: { 200: groupSchema, ...authErrors } },
  }, async (req) => {
    const { name } = req.params as { name: string };
    if (!groupExists(ctx.db, name)) throw notFound("group", name);
    return toApi(name);
  });

  app.post(ROUTES.groupDevices, {
    config: { roles: WRITERS },
    schema: { tags: ["groups"], params: idParam("name"), body: { type: "object", additionalProperties: false, required: ["device_ids"], properties: { device_ids: { ...idList, minItems: 1 } } }, response: { 200: groupSchema, ...authErrors } },
  }, async (req) => {
    const { name } = req.params as { name: string };
    if (!groupExists(ctx.db, name)) throw notFound("group", name);
    ctx.db.transaction(() => addMembers(ctx.db, name, (req.body as { device_ids: string[] }).device_ids, ctx.clock.now()))();
    return toApi(name);
  });

  app.delete(ROUTES.groupDevice, {
    config: { roles: WRITERS },
    schema: { tags: ["groups"], params: { type: "object", required: ["name", "device_id"], properties: { name: { type: "string" }, device_id: { type: "string" } } }, response: { 200: groupSchema, ...authErrors } },
  }, async (req) => {
    const { name, device_id } = req.params as { name: string; device_id: string };
    const r = ctx.db.prepare("DELETE FROM group_members WHERE group_name = ? AND device_id = ?").run(name, device_id);
    if (r.changes === 0) throw notFound("group member", `${name}/${device_id}`);
    return toApi(name);
  });
}
