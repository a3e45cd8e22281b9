// Maintenance windows: a campaign that has any offers updates only inside one of them. A window is a time
// range on some days of the week in a time zone; one that ends before it starts runs past midnight (into
// the next day, which need not be listed).
import { badRequest } from "../api-error";

export const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface MaintenanceWindow {
  /** Days the window opens on; all days when absent. */
  days?: Weekday[];
  /** "HH:MM", 24 h, local to time_zone. */
  start: string;
  end: string;
  /** IANA name (e.g. "Europe/Paris"); default UTC. */
  time_zone?: string;
}

const HHMM = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
export const maintenanceWindowsSchema = {
  type: "array",
  maxItems: 32,
  default: [],
  items: {
    type: "object",
    additionalProperties: false,
    required: ["start", "end"],
    properties: {
      days: { type: "array", minItems: 1, maxItems: 7, uniqueItems: true, items: { type: "string", enum: [...WEEKDAYS] } },
      start: { type: "string", pattern: HHMM },
      end: { type: "string", pattern: HHMM },
      time_zone: { type: "string", minLength: 1, maxLength: 64 },
    },
  },
};

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone: zone, weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    formatters.set(zone, f);
  }
  return f;
}

/** An unknown time zone or an empty window is a 400 at creation, not a campaign that never runs. */
export function validateWindows(windows: MaintenanceWindow[]): void {
  for (const w of windows) {
    try {
      formatter(w.time_zone ?? "UTC");
    } catch {
      throw badRequest(`maintenance window time_zone ${JSON.stringify(w.time_zone)} is not a known time zone`, "INVALID_CAMPAIGN");
    }
    if (w.start === w.end) throw badRequest(`maintenance window ${w.start}-${w.end} is empty`, "INVALID_CAMPAIGN");
  }
}

function localTime(ms: number, zone: string): { day: number; minute: number } {
  const parts = formatter(zone).formatToParts(new Date(ms));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  const day = WEEKDAYS.indexOf(get("weekday").toLowerCase().slice(0, 3) as Weekday);
  return { day, minute: Number(get("hour")) * 60 + Number(get("minute")) };
}

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

export function insideWindow(w: MaintenanceWindow, ms: number): boolean {
  const { day, minute } = localTime(ms, w.time_zone ?? "UTC");
  const opensOn = (d: number) => !w.days || w.days.includes(WEEKDAYS[(d + 7) % 7]!);
  const start = minutes(w.start);
  const end = minutes(w.end);
  if (start < end) return opensOn(day) && minute >= start && minute < end;
  // Past midnight: the evening part on an opening day, the morning part on the day after one.
  return (opensOn(day) && minute >= start) || (opensOn(day - 1) && minute < end);
}

/** True without windows, or inside one of them. */
export function updatesAllowed(windows: MaintenanceWindow[] | undefined, ms: number): boolean {
  return !windows?.length || windows.some((w) => insideWindow(w, ms));
}
