// Limits on what one request or MQTT packet may cost: time to arrive, JSON nesting, metadata and packet sizes.
import type { FastifyInstance, FastifyServerOptions } from "fastify";
import { ApiError } from "../api-error";

export interface RequestLimits {
  /** A request (headers and body) must have arrived within this (Node answers 408 and closes). */
  requestTimeoutMs: number;
  /** A connection silent for this long is closed (a body that stops arriving, an idle client). */
  idleTimeoutMs: number;
  /** Headers must have arrived within this. */
  headersTimeoutMs: number;
  /** Deepest nesting of arrays and objects in a JSON body. */
  jsonDepthMax: number;
  /** Firmware metadata, whether sent as a form field or as a file part. */
  metadataMaxBytes: number;
  /** Largest MQTT packet a client may send to the embedded broker. */
  mqttMaxPacketBytes: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = {
  // 32 MiB at 1 Mbit/s takes 270 s: uploads over slow links still fit, a trickled body does not hold a socket forever.
  requestTimeoutMs: 300_000,
  idleTimeoutMs: 30_000,
  headersTimeoutMs: 20_000,
  jsonDepthMax: 32,
  metadataMaxBytes: 64 * 1024,
  mqttMaxPacketBytes: 64 * 1024,
};

/** fastify's constructor options for the time limits. */
export function fastifyLimits(limits: RequestLimits): Pick<FastifyServerOptions, "requestTimeout" | "connectionTimeout"> {
  return { requestTimeout: limits.requestTimeoutMs, connectionTimeout: limits.idleTimeoutMs };
}

/** Node's headers timeout (fastify has no option for it); must not exceed the request timeout. */
export function applyHeadersTimeout(app: FastifyInstance, limits: RequestLimits): void {
  app.server.headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
}

/** Nesting depth of a parsed JSON value, counted up to `max + 1` (no deeper walk, whatever the input). */
export function jsonDepth(value: unknown, max: number, depth = 0): number {
  if (value === null || typeof value !== "object") return depth;
  if (depth >= max) return depth + 1;
  let deepest = depth + 1;
  for (const v of Object.values(value)) {
    deepest = Math.max(deepest, jsonDepth(v, max, depth + 1));
    if (deepest > max) break;
  }
  return deepest;
}

export function assertJsonDepth(value: unknown, max: number, what: string): void {
  if (jsonDepth(value, max) > max) throw new ApiError(400, "JSON_TOO_DEEP", `${what} nests arrays and objects deeper than ${max} levels`);
}
