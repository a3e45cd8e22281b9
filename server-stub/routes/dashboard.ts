// The operator dashboard: static files from server-stub/dashboard/, served as they are (plain ES modules, no
// build step). `/` is the page; `/dashboard/<file>` its assets. Public: the page holds no data, every API call
// it makes carries the operator's own credential.
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";
import { ApiError } from "../api-error";
import type { AppDeps } from "./common";

export const DASHBOARD_DIR = fileURLToPath(new URL("../dashboard/", import.meta.url));
export const DASHBOARD_PREFIX = "/dashboard/";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** Asset names are path segments of [a-z0-9_-] with one extension: no "..", no absolute paths, no dot files. */
const ASSET_RE = /^(?:[a-z0-9_-]+\/)*[a-z0-9_-]+\.[a-z]+$/;

// Scripts and styles only from this origin: the token the page keeps must not be readable by injected code.
const CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

const missing = (name: string) => new ApiError(404, "NOT_FOUND", `no dashboard file ${name}`);

export async function dashboardRoutes(app: FastifyInstance, _deps: AppDeps) {
  const send = async (reply: FastifyReply, name: string) => {
    const type = TYPES[extname(name)];
    if (!ASSET_RE.test(name) || !type) throw missing(name);
    let body: Buffer;
    try {
      body = await readFile(DASHBOARD_DIR + name);
    } catch {
      throw missing(name);
    }
    return reply
      .type(type)
      .header("Cache-Control", "no-cache")
      .header("X-Content-Type-Options", "nosniff")
      .header("Content-Security-Policy", CSP)
      .send(body);
  };
  const opts = { config: { public: true }, schema: { hide: true } };
  app.get("/", opts, async (_req, reply) => send(reply, "index.html"));
  app.get(`${DASHBOARD_PREFIX}*`, opts, async (req, reply) => send(reply, (req.params as { "*": string })["*"]));
}
