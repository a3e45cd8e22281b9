// LogPort on trace (the serial console / xsbug).
import type { LogLevel, LogPort } from "../core/ports";

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export class EspLog implements LogPort {
  #min: number;
  constructor(options: { level?: LogLevel } = {}) {
    this.#min = RANK[options.level ?? "info"];
  }
  log(level: LogLevel, message: string, fields?: Record<string, string | number | boolean | null>): void {
    if (RANK[level] < this.#min) return;
    trace(`[ota] ${level} ${message}${fields ? " " + JSON.stringify(fields) : ""}\n`);
  }
}
