// Where `ota` finds its server and credential: flags, then $OTA_SERVER / $OTA_API_KEY / $OTA_TOKEN, then the
// config file written by `ota login` ($OTA_CONFIG or ~/.config/ota/config.json, mode 0600: it holds a secret).
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { CliFailure, UsageError } from "./usage";

export type Credential = { api_key: string } | { token: string };

export interface StoredConfig {
  server?: string;
  credential?: Credential;
  /** Default device model for `ota firmware upload`. */
  model?: string;
}

export interface Connection {
  server: string;
  credential: Credential;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.OTA_CONFIG || join(homedir(), ".config", "ota", "config.json");
}

export function readConfig(path: string): StoredConfig {
  if (!existsSync(path)) return {};
  try {
    const value: unknown = JSON.parse(readFileSync(path, "utf8"));
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not a JSON object");
    return value as StoredConfig;
  } catch (e) {
    throw new CliFailure(`config file ${path} is unreadable (${(e as Error).message}); run \`ota login\` again`);
  }
}

export function writeConfig(path: string, config: StoredConfig): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600); // writeFileSync keeps the mode of a file that existed already
}

/** A server URL as typed ("localhost:8221" is refused: fetch needs the scheme), without a trailing slash. */
export function normalizeServer(url: string): string {
  if (!/^https?:\/\/[^\s/]+/.test(url)) throw new UsageError(`--server must be an http:// or https:// URL, not ${JSON.stringify(url)}`, ["login"]);
  return url.replace(/\/+$/, "");
}

export interface ConnectionFlags {
  server?: string;
  "api-key"?: string;
  token?: string;
}

/** The server and credential a command uses; a usage error naming what is missing when there is none. */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): Connection {
  if (flags["api-key"] && flags.token) throw new UsageError("give --api-key or --token, not both");
  const stored = readConfig(configPath(env));
  const server = flags.server ?? env.OTA_SERVER ?? stored.server;
  const apiKey = flags["api-key"] ?? (flags.token ? undefined : env.OTA_API_KEY);
  const token = flags.token ?? (flags["api-key"] ? undefined : env.OTA_TOKEN);
  const credential: Credential | undefined = apiKey ? { api_key: apiKey } : token ? { token } : stored.credential;
  if (!server) throw new UsageError("no server: run `ota login --server URL …` or set $OTA_SERVER", ["login"]);
  if (!credential) throw new UsageError("no credential: run `ota login` or set $OTA_API_KEY or $OTA_TOKEN", ["login"]);
  return { server: normalizeServer(server), credential };
}
