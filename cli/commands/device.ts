// ota device show|update|rollback|tag.
import { list, num, parseCommand, required, str } from "../args";
import { deviceLines, updateLines } from "../format";
import { commandOf, type Io, show } from "../io";
import { UsageError } from "../usage";
import { deviceRollbackPath, devicePath, deviceUpdatePath, deviceUpdatesPath } from "../../device/protocol/paths";

const PRIORITIES = ["low", "normal", "high", "critical"];

export async function device(sub: string | undefined, args: string[], io: Io): Promise<number> {
  const topic = ["device", ...(sub ? [sub] : [])];
  if (sub === "show") {
    const parsed = parseCommand(args, topic, { updates: { type: "string" } }, ["ID"]);
    const cmd = commandOf(parsed, io);
    const id = cmd.positionals[0]!;
    const d = await cmd.client().get(devicePath(id));
    const limit = num(cmd.values, "updates", topic, 0, 100) ?? 5;
    const updates = limit > 0 ? (await cmd.client().get(deviceUpdatesPath(id, { limit }))).updates : [];
    show(cmd, { ...d, updates }, () => deviceLines(d, updates));
    return 0;
  }
  if (sub === "update") {
    const parsed = parseCommand(args, topic, { firmware: { type: "string" }, force: { type: "boolean" }, priority: { type: "string" } }, ["ID"]);
    const cmd = commandOf(parsed, io);
    const priority = str(cmd.values, "priority");
    if (priority !== undefined && !PRIORITIES.includes(priority)) throw new UsageError(`--priority must be one of ${PRIORITIES.join(", ")}`, topic);
    const body = { firmware_id: required(cmd.values, "firmware", topic), force: cmd.values.force === true, ...(priority ? { priority } : {}) };
    const u = await cmd.client().post(deviceUpdatePath(cmd.positionals[0]!), body);
    show(cmd, u, () => updateLines(u));
    return 0;
  }
  if (sub === "rollback") {
    const parsed = parseCommand(args, topic, { version: { type: "string" }, reason: { type: "string" } }, ["ID"]);
    const cmd = commandOf(parsed, io);
    const body = { ...(str(cmd.values, "version") ? { target_version: str(cmd.values, "version") } : {}), reason: str(cmd.values, "reason") ?? null };
    const u = await cmd.client().post(deviceRollbackPath(cmd.positionals[0]!), body);
    show(cmd, u, () => updateLines(u));
    return 0;
  }
  if (sub === "tag") {
    const parsed = parseCommand(args, topic, { set: { type: "string" }, add: { type: "string" }, remove: { type: "string" } }, ["ID"]);
    const cmd = commandOf(parsed, io);
    const [set, add, remove] = [list(cmd.values, "set"), list(cmd.values, "add"), list(cmd.values, "remove")];
    if (!set && !add && !remove) throw new UsageError("device tag needs --set, --add or --remove", topic);
    if (set && (add || remove)) throw new UsageError("--set replaces every tag: use it alone, or --add and --remove", topic);
    const path = devicePath(cmd.positionals[0]!);
    // --add/--remove start from the tags the server has now (the PATCH replaces the whole list).
    const before: string[] = set ?? (await cmd.client().get(path)).tags ?? [];
    const tags = [...before, ...(add ?? [])].filter((t) => !remove?.includes(t));
    const d = await cmd.client().request("PATCH", path, { tags });
    show(cmd, d, () => deviceLines(d, []));
    return 0;
  }
  throw new UsageError(sub === undefined ? "device needs a command: show, update, rollback, tag" : `unknown device command ${JSON.stringify(sub)}`, ["device"]);
}
