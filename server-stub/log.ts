// Logging helpers. Every domain event is logged with structured fields AND a
// "name k=v ..." message, so operators can `grep "campaign_id=abc123"` and
// `grep update_failed | awk '{print $NF}'` (error_code is put last) as the HOWTO does.
import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "pino";

export type EventFields = Record<string, string | number | boolean | null | undefined>;

/** Control characters (C0, DEL, C1, line and paragraph separators) as \xNN / \uNNNN, so input cannot forge log lines or drive a terminal. */
export function escapeControl(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
  });
}

export function logEvent(log: Logger, event: string, fields: EventFields, level: "info" | "warn" | "error" = "info"): void {
  const keys = Object.keys(fields).filter((k) => fields[k] !== undefined && fields[k] !== null);
  keys.sort((a, b) => (a === "error_code" ? 1 : b === "error_code" ? -1 : 0));
  const kv = keys.map((k) => `${k}=${escapeControl(String(fields[k]).replace(/\s+/g, "_"))}`).join(" ");
  log[level]({ event, ...fields }, kv ? `${event} ${kv}` : event);
}

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/** One pino JSON line as "time LEVEL msg …": the message stays last so `awk '{print $NF}'` sees its last field. */
export function toTextLine(line: string): string {
  try {
    const o = JSON.parse(line) as {
      time?: number; level?: number; msg?: string; err?: { message?: string };
      req?: { method?: string; url?: string }; res?: { statusCode?: number }; responseTime?: number;
    };
    const t = new Date(o.time ?? Date.now()).toISOString();
    const http = o.req ? `${o.req.method} ${o.req.url} ` : o.res ? `status=${o.res.statusCode} ms=${Math.round(o.responseTime ?? 0)} ` : "";
    const err = o.err?.message ? `err=${o.err.message.replace(/\s+/g, "_")} ` : "";
    return `${escapeControl(`${t} ${LEVELS[o.level ?? 30] ?? o.level} ${http}${err}${o.msg ?? ""}`)}\n`;
  } catch {
    return `${escapeControl(line.replace(/\n$/, ""))}\n`;
  }
}

export interface Sink {
  write(text: string): void;
}

/** A log file that is renamed to PATH.1 (PATH.1 to PATH.2, …) once it would grow past maxBytes. */
export class RotatingFile implements Sink {
  private fd: number;
  private size: number;

  constructor(readonly path: string, readonly maxBytes: number, readonly keep = 3) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, "a");
    this.size = statSync(path).size;
  }

  write(text: string): void {
    const bytes = Buffer.byteLength(text);
    if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate();
    // Synchronous, so the last lines before a crash or an exit are on disk.
    writeSync(this.fd, text);
    this.size += bytes;
  }

  private rotate(): void {
    closeSync(this.fd);
    for (let i = this.keep - 1; i >= 1; i--) {
      if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    }
    if (this.keep > 0) renameSync(this.path, `${this.path}.1`);
    this.fd = openSync(this.path, "w");
    this.size = 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** A pino destination: each line in `format` to every sink (the log file and the terminal). */
export function logDestination(format: "text" | "json", sinks: Sink[]): { write(line: string): void } {
  return {
    write(line: string) {
      const text = format === "text" ? toTextLine(line) : line;
      for (const s of sinks) s.write(text);
    },
  };
}
