import { randomBytes } from "node:crypto";

/** Prefixed random id, e.g. "upd_3f9a1c0b7d2e4a61"; the prefix tells operators what kind of object it is. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(8).toString("hex")}`;
}
