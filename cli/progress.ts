// What `ota campaign watch` draws from a campaign-stats snapshot: a progress bar per stage. On a terminal
// the block is redrawn in place; otherwise each stage line is printed again only when it changed.
import type { Io } from "./io";

export interface StageView {
  index: number;
  name: string;
  state: string;
  total_devices: number;
  completed: number;
  failed: number;
  rolled_back: number;
  in_progress: number;
  pending: number;
  skipped: number;
  cancelled: number;
}

/** The fields of GET /api/v1/stats/campaigns/{id} that watch shows. */
export interface CampaignSnapshot {
  campaign_id: string;
  status: string;
  total_devices: number;
  completed_devices: number;
  failed_devices: number;
  rolled_back_devices: number;
  in_progress_devices: number;
  pending_devices: number;
  failure_rate_percent: number;
  stages: StageView[];
}

const BAR_WIDTH = 24;

/** [████▒▒░░░░] on a terminal, [####xx....] otherwise: completed, failed or rolled back, the rest. */
export function bar(s: Pick<StageView, "total_devices" | "completed" | "failed" | "rolled_back">, plain: boolean): string {
  const total = Math.max(1, s.total_devices);
  const ok = Math.round((s.completed / total) * BAR_WIDTH);
  const bad = Math.min(BAR_WIDTH - ok, Math.round(((s.failed + s.rolled_back) / total) * BAR_WIDTH));
  const [full, failed, empty] = plain ? ["#", "x", "."] : ["█", "▒", "░"];
  return `[${full.repeat(ok)}${failed.repeat(bad)}${empty.repeat(BAR_WIDTH - ok - bad)}]`;
}

export function stageLine(s: StageView, plain: boolean): string {
  const done = s.completed + s.failed + s.rolled_back + s.skipped + s.cancelled;
  const extra = [s.failed && `${s.failed} failed`, s.rolled_back && `${s.rolled_back} rolled back`, s.in_progress && `${s.in_progress} updating`, s.skipped && `${s.skipped} skipped`]
    .filter(Boolean)
    .join(", ");
  return `stage ${s.index + 1} ${s.name.padEnd(10)} ${bar(s, plain)} ${String(done).padStart(4)}/${s.total_devices} ${s.state}${extra ? `  ${extra}` : ""}`;
}

export function headLine(c: CampaignSnapshot): string {
  return `campaign ${c.campaign_id} ${c.status}: ${c.completed_devices}/${c.total_devices} completed, ${c.failed_devices} failed, ${c.rolled_back_devices} rolled back, failure rate ${c.failure_rate_percent}%`;
}

/** The snapshot without what watch does not show (the stats' event list), for --json lines. */
export function snapshotOf(stats: any): CampaignSnapshot {
  const { events: _events, ...rest } = stats ?? {};
  return rest as CampaignSnapshot;
}

export class ProgressView {
  private drawn = 0;
  private printed = new Map<string, string>();

  constructor(private readonly io: Io, private readonly plain: boolean) {}

  render(c: CampaignSnapshot): void {
    const lines = [headLine(c), ...c.stages.map((s) => `  ${stageLine(s, this.plain)}`)];
    if (!this.plain) {
      // Up over the previous block, clear to the end of the screen, draw again.
      this.io.write(`${this.drawn > 0 ? `\x1b[${this.drawn}A\x1b[J` : ""}${lines.join("\n")}\n`);
      this.drawn = lines.length;
      return;
    }
    lines.forEach((line, i) => {
      const key = i === 0 ? "head" : `stage ${i}`;
      if (this.printed.get(key) === line) return;
      this.printed.set(key, line);
      this.io.out(line);
    });
  }
}
