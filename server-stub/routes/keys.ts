import { ROUTES, SIGNATURE_ALGORITHMS, type SignatureAlg } from "../../device/protocol";
import type { FastifyInstance } from "fastify";
import { conflict, notFound } from "../api-error";
import { ADMINS, READERS } from "../auth/principal";
import { iso } from "../clock";
import type { SigningKey } from "../signing/keystore";
import { authErrors, idParam, type AppDeps } from "./common";

const keySchema = { type: "object", properties: { key_id: { type: "string" }, public_key: { type: "string" }, created_at: { type: "string" }, retired: { type: "boolean" }, algorithm: { type: "string" } } };
const toApi = (k: SigningKey) => ({ key_id: k.key_id, public_key: k.public_key, created_at: iso(k.created_at), retired: k.retired, algorithm: k.algorithm });

export async function keyRoutes(app: FastifyInstance, { ctx }: AppDeps) {
  app.get(ROUTES.keys, {
    config: { roles: READERS },
    schema: { tags: ["keys"], response: { 200: { type: "object", properties: { keys: { type: "array", items: keySchema } } }, ...authErrors } },
  }, async () => ({ keys: ctx.keys.list().map(toApi) }));

  app.post(ROUTES.keyRotate, {
    config: { roles: ADMINS },
    schema: {
      tags: ["keys"],
      // Which algorithm's signer to replace (every manifest carries one signature per algorithm); default ed25519.
      querystring: { type: "object", additionalProperties: false, properties: { algorithm: { type: "string", enum: [...SIGNATURE_ALGORITHMS] } } },
      response: { 201: keySchema, ...authErrors },
    },
  }, async (req, reply) => reply.status(201).send(toApi(ctx.keys.rotate((req.query as { algorithm?: SignatureAlg }).algorithm))));

  app.post(ROUTES.keyRetire, {
    config: { roles: ADMINS },
    schema: { tags: ["keys"], params: idParam("key_id"), response: { 200: keySchema, ...authErrors } },
  }, async (req) => {
    const { key_id } = req.params as { key_id: string };
    const key = ctx.keys.list().find((k) => k.key_id === key_id);
    if (!key) throw notFound("key", key_id);
    try {
      ctx.keys.retire(key_id);
    } catch (e) {
      throw conflict("LAST_ACTIVE_KEY", (e as Error).message);
    }
    return toApi(ctx.keys.list().find((k) => k.key_id === key_id)!);
  });
}
