// ota events [--follow]: the server's events, one line each (--json: the event documents, one per line).
import { num, parseCommand, str } from "../args";
import { eventLine } from "../format";
import { commandOf, type Io } from "../io";
import { EVENTS_PATH, followEvents, NoEventStream } from "../sse";
import { CliFailure } from "../usage";
import { queryString } from "../../device/protocol/paths";

const OPTIONS = {
  follow: { type: "boolean", short: "f" }, campaign: { type: "string" }, device: { type: "string" }, type: { type: "string" },
  after: { type: "string" }, limit: { type: "string" },
} as const;
const TOPIC = ["events"];

export async function events(args: string[], io: Io): Promise<number> {
  const cmd = commandOf(parseCommand(args, TOPIC, OPTIONS), io);
  const filter = { campaign_id: str(cmd.values, "campaign"), device_id: str(cmd.values, "device"), type: str(cmd.values, "type") };
  const after = num(cmd.values, "after", TOPIC, 0, Number.MAX_SAFE_INTEGER);
  const print = (e: unknown) => io.out(cmd.json ? JSON.stringify(e) : eventLine(e));
  const client = cmd.client();
  const missing = () => new CliFailure(`${client.conn.server} has no event stream (${EVENTS_PATH})`);
  if (!cmd.values.follow) {
    // One page of the events the server keeps, oldest first, after --after (default: from the first).
    const limit = num(cmd.values, "limit", TOPIC, 1, 500) ?? 100;
    const page = await client.get(EVENTS_PATH + queryString({ ...filter, after: after ?? 0, limit })).catch((e) => {
      throw (e as { code?: string }).code === "NOT_FOUND" ? missing() : e;
    });
    for (const e of page?.events ?? []) print(e);
    return 0;
  }
  try {
    for await (const batch of followEvents(client, { ...filter, after }, { signal: io.signal })) for (const e of batch) print(e);
  } catch (e) {
    throw e instanceof NoEventStream ? missing() : e;
  }
  return 0;
}
