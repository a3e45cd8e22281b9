// `ota`'s usage text, exit codes and its one-line user error.

/** Exit codes a CI job can act on. */
export const EXIT = { ok: 0, error: 1, usage: 2, paused: 3, failed: 4 } as const;

export const USAGE = `usage:
  ota login --server URL (--api-key KEY | --token JWT) [--model MODEL]
    Checks the credential (GET /api/v1/auth/whoami) and stores {server, credential} in $OTA_CONFIG or
    ~/.config/ota/config.json (mode 0600). $OTA_SERVER, $OTA_API_KEY and $OTA_TOKEN override it.
    --model is the default device model of firmware uploads.
  ota firmware upload FILE [--model MODEL] [--name NAME] [--version V] [--description TEXT]
    Uploads an ESP32 app image; version and name come from its app descriptor (esp_app_desc_t),
    the model from --model or the one \`ota login --model\` stored.
  ota firmware list [--model MODEL]
  ota campaign create --name NAME --firmware FIRMWARE_ID [--devices ID,…] [--groups NAME,…] [--tags TAG,…]
                      [--strategy immediate|staged|canary|blue_green] [--batch-size N] [--max-concurrent N]
                      [--threshold PERCENT] [--min-sample N] [--auto-rollback] [--requires-approval]
                      [--rollout PERCENT] [--canary-percent PERCENT] [--canary-minutes N]
                      [--timeout-minutes N] [--description TEXT] [--selection spread|list_order] [--seed S]
  ota campaign list [--status STATUS]
  ota campaign show ID
  ota campaign approve ID [--comment TEXT]
  ota campaign start ID
  ota campaign resume ID
  ota campaign pause ID [--reason TEXT]
  ota campaign cancel ID [--reason TEXT]
  ota campaign rollback ID [--reason TEXT] [--devices ID,…]
  ota campaign watch ID [--interval SECONDS] [--plain]
    A progress bar per stage, redrawn on each event of the campaign (plain lines when stdout is not a
    terminal, or with --plain), until the campaign ends or pauses. Exit code: 0 completed, 3 paused,
    4 failed or cancelled, 1 when the server cannot be reached. Events come from GET /api/v1/events;
    a server without it is polled every --interval seconds (default 1).
  ota device show ID
  ota device update ID --firmware FIRMWARE_ID [--force] [--priority low|normal|high|critical]
  ota device rollback ID [--version V] [--reason TEXT]
  ota device tag ID (--set TAG,… | [--add TAG,…] [--remove TAG,…])
    The operator's tags of a device (--set "" clears them); a campaign's target_filter.tags picks the
    devices carrying all of its tags.
  ota events [--follow] [--campaign ID] [--device ID] [--type PREFIX] [--after EVENT_ID] [--limit N]
    The server's events, one line each, oldest first: a page of --limit (default 100) after --after
    (default 0); with --follow the new ones as they happen (from --after when given) until Ctrl-C,
    reconnecting after a drop from the last event seen. --type is a prefix: campaign., update.failed, …

Every command takes --json (the server's JSON, one document or one line per event, for scripts),
--server URL, --api-key KEY, --token JWT and --help. Exit codes: 0 done, 1 the server refused (its
error code and message are printed) or cannot be reached, 2 bad usage, 3 and 4 see campaign watch.`;

/** The entries of USAGE for `ota words…` ("  ota cmd …" plus its indented continuation lines), or all of it. */
export function usageOf(words: string[]): string {
  const entries: string[] = [];
  for (const line of USAGE.split("\n").slice(1)) {
    if (line.startsWith("  ota ")) entries.push(line);
    else if (entries.length > 0 && /^\s{3,}\S/.test(line)) entries[entries.length - 1] += `\n${line}`;
    else if (line.trim() === "") break;
  }
  for (let n = words.length; n > 0; n--) {
    const prefix = `  ota ${words.slice(0, n).join(" ")}`;
    const hits = entries.filter((e) => e === prefix || e.startsWith(`${prefix} `) || e.startsWith(`${prefix}\n`));
    if (hits.length > 0) return `usage:\n${hits.join("\n")}\n\nExit codes: 0 done, 1 error from or reaching the server, 2 bad usage${words[1] === "watch" ? ", 3 paused, 4 failed or cancelled" : ""}.`;
  }
  return USAGE;
}

/** Bad usage: one line on stderr with a hint, exit 2. */
export class UsageError extends Error {
  constructor(message: string, readonly topic: string[] = []) {
    super(message);
  }
  get hint(): string {
    return `see \`ota ${this.topic.length > 0 ? `${this.topic.join(" ")} ` : ""}--help\``;
  }
}

/** A failure at run time that is not the server's answer (unreachable server, unreadable file): exit 1. */
export class CliFailure extends Error {}
