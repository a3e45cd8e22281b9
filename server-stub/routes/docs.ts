import { ROUTES } from "../../device/protocol";
import type { FastifyInstance } from "fastify";
import { READERS } from "../auth/principal";
import { anyObject, type AppDeps } from "./common";

export async function docsRoutes(app: FastifyInstance, _deps: AppDeps) {
  app.get(ROUTES.openApi, { config: { roles: READERS }, schema: { tags: ["docs"], response: { 200: anyObject } } }, async () => app.swagger());
}
