// ota campaign create|list|show|approve|start|resume|pause|cancel|rollback|watch.
import { list, num, parseCommand, required, str, type Options, type Values } from "../args";
import { campaignLines, campaignRow } from "../format";
import { type Command, commandOf, type Io, show } from "../io";
import { UsageError } from "../usage";
import { watchCampaign } from "../watch";
import { campaignActionPath, campaignPath, ROUTES, queryString } from "../../device/protocol/paths";

const STRATEGIES = ["immediate", "staged", "canary", "blue_green"];
const STATUSES = ["created", "scheduled", "in_progress", "paused", "completed", "failed", "cancelled"];
const COMMANDS = "create, list, show, approve, start, resume, pause, cancel, rollback, watch";

const CREATE_OPTIONS: Options = {
  name: { type: "string" }, firmware: { type: "string" }, devices: { type: "string" }, groups: { type: "string" }, tags: { type: "string" },
  strategy: { type: "string" }, "batch-size": { type: "string" }, "max-concurrent": { type: "string" },
  threshold: { type: "string" }, "min-sample": { type: "string" }, "auto-rollback": { type: "boolean" },
  "requires-approval": { type: "boolean" }, rollout: { type: "string" }, "canary-percent": { type: "string" },
  "canary-minutes": { type: "string" }, "timeout-minutes": { type: "string" }, description: { type: "string" },
  selection: { type: "string" }, seed: { type: "string" },
};

/** Per command: its own flags and what POST /campaigns/{id}/… gets as body. */
const ACTIONS: Record<string, { path: "approve" | "start" | "pause" | "cancel" | "rollback"; options: Options; body: (v: Values) => unknown }> = {
  approve: { path: "approve", options: { comment: { type: "string" } }, body: (v) => ({ approval_comment: str(v, "comment") ?? null }) },
  start: { path: "start", options: {}, body: () => undefined },
  resume: { path: "start", options: {}, body: () => undefined }, // the server's start resumes a paused campaign
  pause: { path: "pause", options: { reason: { type: "string" } }, body: (v) => ({ reason: str(v, "reason") ?? null }) },
  cancel: { path: "cancel", options: { reason: { type: "string" } }, body: (v) => ({ reason: str(v, "reason") ?? null }) },
  rollback: {
    path: "rollback", options: { reason: { type: "string" }, devices: { type: "string" } },
    body: (v) => ({ reason: str(v, "reason") ?? null, target_devices: list(v, "devices") ?? [] }),
  },
};

export async function campaign(sub: string | undefined, args: string[], io: Io): Promise<number> {
  const topic = ["campaign", ...(sub ? [sub] : [])];
  if (sub === "create") return create(commandOf(parseCommand(args, topic, CREATE_OPTIONS), io), topic);
  if (sub === "list") {
    const cmd = commandOf(parseCommand(args, topic, { status: { type: "string" } }), io);
    const status = str(cmd.values, "status");
    if (status !== undefined && !STATUSES.includes(status)) throw new UsageError(`--status must be one of ${STATUSES.join(", ")}`, topic);
    const page = await cmd.client().get(ROUTES.campaigns + queryString({ status, limit: 100 }));
    show(cmd, page, () => (page.campaigns.length === 0 ? ["no campaigns"] : page.campaigns.map(campaignRow)));
    return 0;
  }
  if (sub === "show") {
    const cmd = commandOf(parseCommand(args, topic, {}, ["ID"]), io);
    const c = await cmd.client().get(campaignPath(cmd.positionals[0]!));
    show(cmd, c, () => campaignLines(c));
    return 0;
  }
  if (sub === "watch") {
    const cmd = commandOf(parseCommand(args, topic, { interval: { type: "string" }, plain: { type: "boolean" } }, ["ID"]), io);
    const interval = num(cmd.values, "interval", topic, 0.05, 3600, false) ?? 1;
    return watchCampaign(cmd, cmd.positionals[0]!, { intervalMs: interval * 1000, plain: cmd.values.plain === true || !io.isTTY });
  }
  const action = sub !== undefined ? ACTIONS[sub] : undefined;
  if (action) {
    const cmd = commandOf(parseCommand(args, topic, action.options, ["ID"]), io);
    const result = await cmd.client().post(campaignActionPath(cmd.positionals[0]!, action.path), action.body(cmd.values));
    show(cmd, result, () => (sub === "rollback" ? rollbackLines(result) : campaignLines(result)));
    return 0;
  }
  throw new UsageError(sub === undefined ? `campaign needs a command: ${COMMANDS}` : `unknown campaign command ${JSON.stringify(sub)}`, ["campaign"]);
}

async function create(cmd: Command, topic: string[]): Promise<number> {
  const v = cmd.values;
  const strategy = str(v, "strategy");
  if (strategy !== undefined && !STRATEGIES.includes(strategy)) throw new UsageError(`--strategy must be one of ${STRATEGIES.join(", ")}`, topic);
  const devices = list(v, "devices");
  const groups = list(v, "groups");
  const tags = list(v, "tags");
  if (!devices?.length && !groups?.length && !tags?.length) throw new UsageError("campaign create needs --devices ID,…, --groups NAME,… or --tags TAG,…", topic);
  const body: Record<string, unknown> = {
    name: required(v, "name", topic),
    firmware_id: required(v, "firmware", topic),
    description: str(v, "description"),
    deployment_strategy: strategy,
    target_devices: devices,
    target_groups: groups,
    // Tags are a live filter: devices tagged after the start join the campaign.
    target_filter: tags?.length ? { tags } : undefined,
    batch_size: num(v, "batch-size", topic, 1, 100000),
    max_concurrent_updates: num(v, "max-concurrent", topic, 1, 100000),
    failure_threshold_percent: num(v, "threshold", topic, 0, 100, false),
    failure_min_sample: num(v, "min-sample", topic, 1, 100000),
    auto_rollback: v["auto-rollback"] === true || undefined,
    requires_approval: v["requires-approval"] === true || undefined,
    rollout_percentage: num(v, "rollout", topic, 0.01, 100, false),
    canary_percentage: num(v, "canary-percent", topic, 0.01, 100, false),
    canary_duration_minutes: num(v, "canary-minutes", topic, 0, 525600),
    timeout_minutes: num(v, "timeout-minutes", topic, 1, 525600),
    // How stages draw their devices: a seeded sample spread over groups and hardware (default) or the list's order.
    selection: str(v, "selection"),
    sample_seed: str(v, "seed"),
  };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  const c = await cmd.client().post(ROUTES.campaigns, body);
  show(cmd, c, () => [`created ${c.campaign_id}`, ...campaignLines(c)]);
  return 0;
}

function rollbackLines(r: any): string[] {
  const rolled: unknown[] = Array.isArray(r?.rollback_updates) ? r.rollback_updates : [];
  const skipped: Array<{ device_id?: string; reason?: string }> = Array.isArray(r?.skipped) ? r.skipped : [];
  return [`${r?.campaign_id} ${r?.status}: rollback sent to ${rolled.length} device(s)`, ...skipped.map((s) => `  skipped ${s.device_id ?? "?"}: ${s.reason ?? ""}`)];
}
