// What an operator does with curl, as a tiny REST client: token, firmware upload, campaigns, stats.
import { campaignActionPath, campaignStatsPath, ROUTES } from "../device/protocol/paths";
import type { FetchLike } from "../host-sim/pinned-fetch";

export class Operator {
  /** `fetch`: one that trusts the server's CA when it speaks TLS (host-sim/pinned-fetch.ts). */
  constructor(readonly baseUrl: string, readonly token: string, private readonly fetch: FetchLike = globalThis.fetch) {}

  /** A dev token from the stub's dev-token endpoint (a server started with --dev-tokens, called from loopback). */
  static async login(baseUrl: string, role = "operator", fetch: FetchLike = globalThis.fetch): Promise<Operator> {
    const res = await fetch(baseUrl + ROUTES.devToken, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user_id: "demo-operator", email: "operator@example.com", role, expires_in: 24 * 3600 }),
    });
    if (!res.ok) throw new Error(`dev-token: ${res.status} ${await res.text()}`);
    return new Operator(baseUrl, ((await res.json()) as { access_token: string }).access_token, fetch);
  }

  async call<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    let payload: string | FormData | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const res = await this.fetch(this.baseUrl + path, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : null) as T;
  }

  /** POST /api/v1/firmware (multipart: metadata + file). */
  async upload(meta: { version: string; device_model: string; name: string; changelog?: string }, bytes: Uint8Array): Promise<{ firmware_id: string; file_size?: number; deltas?: { from_firmware_id: string | null; status: string; patch_size: number | null }[] }> {
    const form = new FormData();
    form.append("metadata", JSON.stringify(meta));
    form.append("file", new Blob([bytes], { type: "application/octet-stream" }), `firmware-${meta.version}.bin`);
    return this.call("POST", ROUTES.firmwareList, form);
  }

  createCampaign(body: Record<string, unknown>): Promise<{ campaign_id: string; status: string }> {
    return this.call("POST", ROUTES.campaigns, body);
  }

  approve(id: string, comment: string) {
    return this.call("POST", campaignActionPath(id, "approve"), { approval_comment: comment });
  }

  start(id: string) {
    return this.call("POST", campaignActionPath(id, "start"), {});
  }

  campaignStats(id: string): Promise<CampaignStats> {
    return this.call("GET", campaignStatsPath(id));
  }

  stats(): Promise<{ bytes_served: number; bytes_served_delta: number; delta_bytes_saved: number; devices_by_version: Record<string, number>; updates_by_status: Record<string, number> }> {
    return this.call("GET", ROUTES.stats);
  }
}

export interface StageView {
  index: number;
  name: string;
  state: string;
  total_devices: number;
  pending: number;
  in_progress: number;
  completed: number;
  failed: number;
  skipped: number;
  cancelled: number;
  rolled_back: number;
}

export interface CampaignStats {
  campaign_id: string;
  status: string;
  total_devices: number;
  completed_devices: number;
  failed_devices: number;
  in_progress_devices: number;
  pending_devices: number;
  skipped_devices: number;
  cancelled_devices: number;
  rolled_back_devices: number;
  rolled_back_by_device: number;
  rolled_back_by_server: number;
  failure_rate_percent: number;
  failures_by_error_code: Record<string, number>;
  rollback_updates_by_status: Record<string, number>;
  stages: StageView[];
  events: { at: string; type: string; detail: Record<string, unknown> }[];
}
