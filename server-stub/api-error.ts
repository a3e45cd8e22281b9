// Errors as data: every failure leaves the server as {"error": {"code", "message"}}.

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const badRequest = (message: string, code = "BAD_REQUEST", details?: unknown) => new ApiError(400, code, message, details);
export const notFound = (what: string, id: string) => new ApiError(404, `${what.toUpperCase()}_NOT_FOUND`, `${what} ${id} not found`);
export const conflict = (code: string, message: string, details?: unknown) => new ApiError(409, code, message, details);
export const forbidden = (message = "not allowed for this credential") => new ApiError(403, "FORBIDDEN", message);
export const unauthorized = (message = "missing or invalid credentials") => new ApiError(401, "UNAUTHORIZED", message);

export const errorResponseSchema = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: { code: { type: "string" }, message: { type: "string" }, details: {} },
      required: ["code", "message"],
    },
  },
};
