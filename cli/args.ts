// Flags of one command (its own plus the global ones), parsed strictly: an unknown flag or a missing
// argument is a UsageError naming the command.
import { parseArgs } from "node:util";
import { UsageError } from "./usage";

type Option = { type: "string" | "boolean"; short?: string };
export type Options = Record<string, Option>;

export const GLOBAL_OPTIONS = {
  json: { type: "boolean" },
  server: { type: "string" },
  "api-key": { type: "string" },
  token: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

export type Values = Record<string, string | boolean | undefined>;

export interface Parsed {
  values: Values;
  positionals: string[];
}

/** Parses args; `names` are the positional arguments the command needs (at most that many are allowed). */
export function parseCommand(args: string[], topic: string[], options: Options, names: string[] = []): Parsed {
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true }) as Parsed;
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional.*$/s, ""), topic);
  }
  const { positionals } = parsed;
  if (positionals.length < names.length) throw new UsageError(`${topic.join(" ")} needs ${names.slice(positionals.length).join(" and ")}`, topic);
  if (positionals.length > names.length) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[names.length])}`, topic);
  return parsed;
}

export function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function required(values: Values, name: string, topic: string[]): string {
  const v = str(values, name);
  if (v === undefined || v === "") throw new UsageError(`${topic.join(" ")} needs --${name}`, topic);
  return v;
}

/** A number flag within [min, max]; undefined when absent. */
export function num(values: Values, name: string, topic: string[], min: number, max: number, integer = true): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new UsageError(`--${name} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}, not ${JSON.stringify(v)}`, topic);
  }
  return n;
}

/** "a,b, c" → ["a", "b", "c"]; undefined when absent. */
export function list(values: Values, name: string): string[] | undefined {
  const v = str(values, name);
  return v === undefined ? undefined : v.split(",").map((s) => s.trim()).filter(Boolean);
}
