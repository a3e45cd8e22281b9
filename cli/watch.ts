// ota campaign watch: redraws the campaign's stages from its stats on each of its events, until it ends or
// pauses; the exit code says how it ended. A server without the event stream is polled instead.
import { endReason } from "./format";
import type { Command } from "./io";
import { ProgressView, snapshotOf } from "./progress";
import { followEvents, NoEventStream, pause } from "./sse";
import { EXIT } from "./usage";
import { campaignPath, campaignStatsPath } from "../device/protocol/paths";

/** The exit code for a campaign status, or null while the campaign may still go on by itself. */
export function exitCodeOf(status: string): number | null {
  if (status === "completed") return EXIT.ok;
  if (status === "paused") return EXIT.paused;
  if (status === "failed" || status === "cancelled") return EXIT.failed;
  return null; // created, scheduled, in_progress
}

export interface WatchOptions {
  intervalMs: number;
  plain: boolean;
}

export async function watchCampaign(cmd: Command, id: string, opts: WatchOptions): Promise<number> {
  const client = cmd.client();
  const { io } = cmd;
  const campaign = await client.get(campaignPath(id)); // a wrong id fails here, with CAMPAIGN_NOT_FOUND
  const view = new ProgressView(io, opts.plain);
  let last = "";
  if (!cmd.json) io.out(`watching ${id} "${campaign.name}" (${campaign.deployment_strategy}, failure threshold ${campaign.failure_threshold_percent}%)`);

  /** Reads the stats, shows them if they changed; returns the exit code once the campaign ended or paused. */
  const refresh = async (): Promise<number | null> => {
    const snap = snapshotOf(await client.get(campaignStatsPath(id)));
    const code = exitCodeOf(snap.status);
    const text = JSON.stringify(snap);
    if (text !== last || code !== null) {
      last = text;
      if (cmd.json) io.out(JSON.stringify(code === null ? snap : { ...snap, exit_code: code }));
      else view.render(snap);
    }
    return code;
  };
  let code = await refresh();
  if (code !== null) return end(code);
  try {
    code = await streamed(cmd, id, refresh);
  } catch (e) {
    if (!(e instanceof NoEventStream)) throw e;
    if (!cmd.json) io.out(`(no event stream on this server: polling every ${opts.intervalMs / 1000} s)`);
    code = await polled(cmd, refresh, opts.intervalMs);
  }
  return code === null ? 130 : end(code); // null: interrupted (Ctrl-C)

  async function end(code: number): Promise<number> {
    if (cmd.json) return code;
    const c = await client.get(campaignPath(id)).catch(() => null);
    const why = c ? endReason(c) : null;
    io.out(`campaign ${id} ${c?.status ?? "ended"}${why ? `: ${why}` : ""} (exit ${code})`);
    return code;
  }
}

async function polled(cmd: Command, refresh: () => Promise<number | null>, intervalMs: number): Promise<number | null> {
  while (!cmd.io.signal.aborted) {
    await pause(intervalMs, cmd.io.signal);
    if (cmd.io.signal.aborted) break;
    const code = await refresh();
    if (code !== null) return code;
  }
  return null;
}

async function streamed(cmd: Command, id: string, refresh: () => Promise<number | null>): Promise<number | null> {
  let code: number | null = null;
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  cmd.io.signal.addEventListener("abort", onAbort);
  // On each (re)connect the stats are read again: whatever happened before the stream opened is in that read,
  // and the stream (resumed with Last-Event-ID) brings everything after it.
  const onOpen = async () => {
    code = await refresh();
    if (code !== null) stop.abort();
  };
  try {
    for await (const _batch of followEvents(cmd.client(), { campaign_id: id }, { signal: stop.signal, onOpen })) {
      code = await refresh();
      if (code !== null) break;
    }
    return code;
  } finally {
    cmd.io.signal.removeEventListener("abort", onAbort);
    stop.abort();
  }
}
