// ota login: checks a credential against the server, then stores it for the other commands.
import { parseCommand, str } from "../args";
import { ApiClient } from "../client";
import { type Credential, configPath, normalizeServer, readConfig, writeConfig } from "../config";
import type { Io } from "../io";
import { UsageError } from "../usage";
import { ROUTES } from "../../device/protocol/paths";

const TOPIC = ["login"];

export async function login(args: string[], io: Io): Promise<number> {
  const { values } = parseCommand(args, TOPIC, { model: { type: "string" } });
  const server = str(values, "server");
  const apiKey = str(values, "api-key");
  const token = str(values, "token");
  if (!server) throw new UsageError("login needs --server URL", TOPIC);
  if ((apiKey ? 1 : 0) + (token ? 1 : 0) !== 1) throw new UsageError("login needs one of --api-key KEY or --token JWT", TOPIC);
  const credential: Credential = apiKey ? { api_key: apiKey } : { token: token! };
  const conn = { server: normalizeServer(server), credential };
  // A credential the server refuses is not stored: the ApiError (401 UNAUTHORIZED) goes to the user.
  const who = await new ApiClient(conn).get(ROUTES.whoami);
  const path = configPath(io.env);
  const model = str(values, "model");
  writeConfig(path, { ...readConfig(path), ...conn, ...(model ? { model } : {}) });
  if (values.json) io.out(JSON.stringify({ server: conn.server, config: path, whoami: who }, null, 2));
  else io.out(`logged in to ${conn.server} as ${who?.subject ?? "?"} (${who?.role ?? "?"}); saved in ${path}`);
  return 0;
}
