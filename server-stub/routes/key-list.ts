// The signed key list devices rotate their trusted keys with (device/protocol/release.ts): devices fetch it
// (available-updates advertises its version), admins publish one that the firmware team's CI signed offline.
import type { FastifyInstance } from "fastify";
import { ROUTES, signedKeyListSchema, type SignedKeyList } from "../../device/protocol";
import { notFound } from "../api-error";
import { ADMINS, DEVICE_FACING, READERS } from "../auth/principal";
import { currentKeyList, storeKeyList } from "../services/release-signatures";
import { authErrors, type AppDeps } from "./common";

export async function keyListRoutes(app: FastifyInstance, { ctx }: AppDeps) {
  app.get(ROUTES.keyList, {
    config: { roles: [...new Set([...DEVICE_FACING, ...READERS])] },
    schema: { tags: ["keys"], response: { 200: signedKeyListSchema, ...authErrors } },
  }, async () => {
    const list = currentKeyList(ctx);
    if (!list) throw notFound("key list", "current");
    return list;
  });

  app.put(ROUTES.keyList, {
    config: { roles: ADMINS },
    schema: { tags: ["keys"], body: signedKeyListSchema, response: { 200: signedKeyListSchema, ...authErrors } },
  }, async (req) => storeKeyList(ctx, req.body as SignedKeyList));
}
