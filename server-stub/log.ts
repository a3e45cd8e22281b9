// Logging helpers. Every domain event is logged with structured fields AND a
// "name k=v ..." message, so operators can `grep "campaign_id=abc123"` and
// `grep update_failed | awk '{print $NF}'` (error_code is put last) as the HOWTO does.
import { createWriteStream } from "node:fs";
import type { Writable } from "node:stream";
import type { Logger } from "pino";

export type EventFields = Record<string, string | number | boolean | null | undefined>;

export function logEvent(log: Logger, event: string, fields: EventFields, level: "info" | "warn" | "error" = "info"): void {
  const keys = Object.keys(fields).filter((k) => fields[k] !== undefined && fields[k] !== null);
  keys.sort((a, b) => (a === "error_code" ? 1 : b === "error_code" ? -1 : 0));
  const kv = keys.map((k) => `${k}=${String(fields[k]).replace(/\s+/g, "_")}`).join(" ");
  log[level]({ event, ...fields }, kv ? `${event} ${kv}` : event);
}

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/** A pino destination writing "time LEVEL msg" lines instead of JSON (--log-format text). */
export function textDestination(out: Writable): { write(line: string): void } {
  return {
    write(line: string) {
      try {
        const o = JSON.parse(line) as {
          time?: number; level?: number; msg?: string; err?: { message?: string };
          req?: { method?: string; url?: string }; res?: { statusCode?: number }; responseTime?: number;
        };
        const t = new Date(o.time ?? Date.now()).toISOString();
        const http = o.req ? ` ${o.req.method} ${o.req.url}` : o.res ? ` status=${o.res.statusCode} ms=${Math.round(o.responseTime ?? 0)}` : "";
        out.write(`${t} ${LEVELS[o.level ?? 30] ?? o.level} ${o.msg ?? ""}${http}${o.err?.message ? " err=" + o.err.message : ""}\n`);
      } catch {
        out.write(line);
      }
    },
  };
}

export function fileStream(path: string): Writable {
  return createWriteStream(path, { flags: "a" });
}
