// ota events [--follow]: the server's events, one line each (--json: the event documents, one per line).
import { parseCommand, str } from "../args";
import { eventLine } from "../format";
import { commandOf, type Io } from "../io";
import { EVENTS_PATH, followEvents, NoEventStream } from "../sse";
import { CliFailure } from "../usage";
import { queryString } from "../../device/protocol/paths";

const OPTIONS = { follow: { type: "boolean", short: "f" }, campaign: { type: "string" }, device: { type: "string" }, type: { type: "string" } } as const;

export async function events(args: string[], io: Io): Promise<number> {
  const cmd = commandOf(parseCommand(args, ["events"], OPTIONS), io);
  const filter = { campaign_id: str(cmd.values, "campaign"), device_id: str(cmd.values, "device"), type: str(cmd.values, "type") };
  const print = (e: any) => io.out(cmd.json ? JSON.stringify(e) : eventLine(e));
  const client = cmd.client();
  if (!cmd.values.follow) {
    // Without --follow: the events the server keeps, as a JSON list.
    const page = await client.request("GET", EVENTS_PATH + queryString(filter)).catch((e) => {
      if ((e as { code?: string }).code === "NOT_FOUND") throw new CliFailure(`${client.conn.server} has no event stream (${EVENTS_PATH})`);
      throw e;
    });
    const list: unknown[] = Array.isArray(page) ? page : Array.isArray(page?.events) ? page.events : [];
    for (const e of list) print(e);
    return 0;
  }
  try {
    for await (const batch of followEvents(client, filter, { signal: io.signal })) for (const e of batch) print(e);
  } catch (e) {
    if (e instanceof NoEventStream) throw new CliFailure(`${client.conn.server} has no event stream (${EVENTS_PATH})`);
    throw e;
  }
  return 0;
}
