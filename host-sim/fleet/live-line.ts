// The fleet simulator's status line: what the devices run (seen from the fleet) and how the
// newest campaign stands (seen from the server), so failures, rollbacks and a pause show up.
import type { FetchLike } from "../pinned-fetch";

export interface CampaignSummary {
  campaign_id: string;
  name: string;
  status: string;
  current_stage: number;
  stages: unknown[];
  total_devices: number;
  completed_devices: number;
  failed_devices: number;
  rolled_back_devices: number;
  in_progress_devices: number;
  pause_reason: string | null;
}

export function formatCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort()
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}

export function campaignPart(c: CampaignSummary | null): string {
  if (!c) return "campaign none yet";
  const stage = c.stages.length > 1 ? ` stage ${Math.min(c.current_stage + 1, c.stages.length)}/${c.stages.length}` : "";
  const pause = c.status === "paused" && c.pause_reason ? ` (${c.pause_reason})` : "";
  return (
    `campaign ${c.campaign_id} ${c.status}${pause}${stage}: ${c.completed_devices}/${c.total_devices} done, ` +
    `${c.in_progress_devices} updating, ${c.failed_devices} failed, ${c.rolled_back_devices} rolled back`
  );
}

/** The newest campaign on the server, or null when there is none or the server cannot say (the line still prints). */
export async function newestCampaign(server: string, token: string, fetch: FetchLike = globalThis.fetch): Promise<CampaignSummary | null | "unknown"> {
  const auth: Record<string, string> = token.split(".").length === 3 ? { authorization: `Bearer ${token}` } : { "x-api-key": token };
  try {
    const res = await fetch(`${server}/api/v1/campaigns?limit=1`, { headers: auth, signal: AbortSignal.timeout(5000) });
    if (!res.ok) return "unknown";
    return ((await res.json()) as { campaigns: CampaignSummary[] }).campaigns[0] ?? null;
  } catch {
    return "unknown";
  }
}

export function liveLine(versions: Record<string, number>, phases: Record<string, number>, downloadedMiB: number, campaign: CampaignSummary | null | "unknown"): string {
  const c = campaign === "unknown" ? "campaign ? (server not answering)" : campaignPart(campaign);
  return `versions ${formatCounts(versions)} | agents ${formatCounts(phases)} | ${downloadedMiB.toFixed(1)} MiB | ${c}`;
}
