// ota: the release CLI, a client of the OTA server's REST API (see `ota --help`).
import { ApiError } from "./client";
import { campaign } from "./commands/campaign";
import { device } from "./commands/device";
import { events } from "./commands/events";
import { firmware } from "./commands/firmware";
import { login } from "./commands/login";
import type { Io } from "./io";
import { CliFailure, EXIT, UsageError, USAGE, usageOf } from "./usage";

const GROUPS = ["login", "firmware", "campaign", "device", "events"];

export async function main(argv: string[], io: Io): Promise<number> {
  const [group, ...rest] = argv;
  const sub = rest[0] !== undefined && !rest[0].startsWith("-") ? rest[0] : undefined;
  const json = argv.includes("--json");
  try {
    if (group === undefined || group === "help" || group === "--help" || group === "-h") {
      io.out(group === "help" && sub ? usageOf([sub, ...rest.slice(1)]) : USAGE);
      return EXIT.ok;
    }
    if (!GROUPS.includes(group)) throw new UsageError(`unknown command ${JSON.stringify(group)}`);
    if (argv.includes("--help") || argv.includes("-h")) {
      io.out(usageOf(sub ? [group, sub] : [group]));
      return EXIT.ok;
    }
    const args = sub ? rest.slice(1) : rest;
    if (group === "login") return await login(rest, io);
    if (group === "firmware") return await firmware(sub, args, io);
    if (group === "campaign") return await campaign(sub, args, io);
    if (group === "device") return await device(sub, args, io);
    return await events(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`ota: ${e.message} (${e.hint})`);
      return EXIT.usage;
    }
    if (e instanceof ApiError) {
      if (json) io.err(JSON.stringify({ error: { status: e.status, code: e.code, message: e.message } }));
      else io.err(`ota: ${e.code}: ${e.message} (HTTP ${e.status})`);
      return EXIT.error;
    }
    if (e instanceof CliFailure) {
      io.err(`ota: ${e.message}`);
      return EXIT.error;
    }
    throw e;
  }
}
