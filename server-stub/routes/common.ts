import type { AppDeps } from "../app";
import { errorResponseSchema } from "../api-error";

export type { AppDeps };

/** Error responses every authenticated route can produce, for the OpenAPI document. */
export const authErrors = { 400: errorResponseSchema, 401: errorResponseSchema, 403: errorResponseSchema, 404: errorResponseSchema, 409: errorResponseSchema };

export const anyObject = { type: "object", additionalProperties: true };

export const idParam = (name: string) => ({
  type: "object",
  required: [name],
  properties: { [name]: { type: "string", minLength: 1, maxLength: 128 } },
});

export const reasonBody = {
  type: "object",
  additionalProperties: false,
  properties: { reason: { type: ["string", "null"], maxLength: 1000 } },
};

export const paging = {
  limit: { type: "integer", minimum: 1, maximum: 1000, default: 100 },
  offset: { type: "integer", minimum: 0, maximum: 10_000_000, default: 0 },
};
