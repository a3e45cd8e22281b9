// PostgreSQL refuses U+0000 in TEXT and no field of this API has a use for it, so a request holding one (in a
// value or a key) is refused with a 400 before any of it reaches the database, whichever the backend.
import { badRequest } from "./api-error";

/** Path of the first string (or object key) holding a NUL in a parsed request part (depth-limited), or null. */
export function nulStringPath(value: unknown, path: string, depth = 0): string | null {
  if (typeof value === "string") return value.includes("\u0000") ? path : null;
  if (depth > 32 || value === null || typeof value !== "object") return null;
  for (const [k, v] of Object.entries(value)) {
    if (k.includes("\u0000")) return path;
    const found = nulStringPath(v, `${path}/${k}`, depth + 1);
    if (found) return found;
  }
  return null;
}

export function refuseNulStrings(value: unknown, path: string): void {
  const where = nulStringPath(value, path);
  if (where) throw badRequest(`${where} must not contain a NUL character (U+0000)`, "NUL_CHARACTER");
}
