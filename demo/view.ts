// Output of the demo: on a terminal, event lines scroll while a live block (progress bar per stage, device
// counts by state and by version) is redrawn under them; otherwise plain lines, a status line only when the
// counts changed (at most once a second).
import type { CampaignStats, StageView } from "./operator";

export interface Live {
  campaign: CampaignStats | null;
  versions: Record<string, number>;
  phases: Record<string, number>;
}

export interface View {
  /** A line that stays (story steps, campaign events). */
  line(text: string): void;
  /** The current state; redrawn in place on a terminal. */
  live(state: Live): void;
  /** Freezes the live block (its last drawing stays on screen) before the next story step. */
  settle(): void;
}

const BAR = 24;

export function bar(done: number, total: number, width = BAR): string {
  const full = total === 0 ? width : Math.round((done / total) * width);
  return "█".repeat(full) + "░".repeat(width - full);
}

export function fmtCounts(counts: Record<string, number>, order?: string[]): string {
  const keys = order ?? Object.keys(counts).sort();
  return keys.filter((k) => (counts[k] ?? 0) > 0).map((k) => `${k} ${counts[k]}`).join(" · ") || "–";
}

const STATE_ORDER = ["pending", "in_progress", "completed", "failed", "rolled_back", "skipped", "cancelled"];

export function stageLine(s: StageView): string {
  const finished = s.completed + s.failed + s.rolled_back + s.skipped + s.cancelled;
  // A finished stage is ✓ only when something in it succeeded; a stage where nothing did is ✗.
  const mark = s.state === "done" ? (s.completed > 0 || s.total_devices === 0 ? "✓" : "✗") : s.state === "active" ? "…" : s.state === "soaking" ? "soak" : "";
  const extra = [s.failed ? `${s.failed} failed` : "", s.rolled_back ? `${s.rolled_back} rolled back` : "", s.in_progress ? `${s.in_progress} updating` : ""].filter(Boolean).join(", ");
  return `  ${s.name.padEnd(10)} [${bar(finished, s.total_devices)}] ${String(finished).padStart(4)}/${String(s.total_devices).padEnd(4)} ${mark}${extra ? `  (${extra})` : ""}`;
}

function stateCounts(c: CampaignStats): Record<string, number> {
  return {
    pending: c.pending_devices, in_progress: c.in_progress_devices, completed: c.completed_devices, failed: c.failed_devices,
    rolled_back: c.rolled_back_devices, skipped: c.skipped_devices, cancelled: c.cancelled_devices,
  };
}

function block(s: Live): string[] {
  const out: string[] = [];
  if (s.campaign) {
    out.push(`  campaign ${s.campaign.campaign_id}: ${s.campaign.status}, failure rate ${s.campaign.failure_rate_percent}%`);
    for (const st of s.campaign.stages) out.push(stageLine(st));
    out.push(`  devices by state:   ${fmtCounts(stateCounts(s.campaign), STATE_ORDER)}`);
  }
  out.push(`  devices by version: ${fmtCounts(prefixV(s.versions))}`);
  out.push(`  device agents:      ${fmtCounts(s.phases)}`);
  return out;
}

export function prefixV(versions: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(versions).map(([k, v]) => [/^\d/.test(k) ? `v${k}` : k, v]));
}

export function ttyView(write: (s: string) => void): View {
  let drawn = 0;
  let last: string[] = [];
  const erase = () => {
    if (drawn > 0) write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
  };
  const draw = () => {
    write(last.map((l) => l + "\n").join(""));
    drawn = last.length;
  };
  return {
    line(text) {
      erase();
      write(text + "\n");
      draw();
    },
    live(state) {
      erase();
      last = block(state);
      draw();
    },
    settle() {
      drawn = 0;
      last = [];
    },
  };
}

export function plainView(write: (s: string) => void): View {
  let previous = "";
  let at = 0;
  let pending: string | null = null;
  const flush = () => {
    if (pending !== null) write(pending + "\n");
    pending = null;
  };
  return {
    line(text) {
      write(text + "\n");
    },
    live(s) {
      const c = s.campaign;
      const status = [
        c ? `${c.status}: ${c.stages.map((st) => `${st.name} ${st.completed + st.failed + st.rolled_back + st.skipped + st.cancelled}/${st.total_devices}`).join(", ")} | ${fmtCounts(stateCounts(c), STATE_ORDER)}` : "",
        `versions ${fmtCounts(prefixV(s.versions))}`,
      ].filter(Boolean).join(" | ");
      if (status === previous) return;
      previous = status;
      pending = `  ${status}`;
      if (Date.now() - at >= 1000) {
        at = Date.now();
        flush();
      }
    },
    settle() {
      flush();
      previous = "";
    },
  };
}
