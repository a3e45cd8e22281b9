// Every call the device makes to the OTA server, in one place: the update check, status reports and the
// firmware download. Paths come from the protocol module, so device and server cannot disagree on them.
import type { HealthReport } from "../protocol/health";
import { availableUpdatesPath, deviceHealthPath, updateStatusPath } from "../protocol/paths";
import type { StatusReport } from "../protocol/status";
import type { ResolvedConfig } from "./config";
import { errorMessage, transient } from "./failures";
import type { HttpBodyStream, HttpPort, LogPort } from "./ports";

export type UpdateCheck =
  | { kind: "offer"; body: string }
  | { kind: "unreachable"; message: string };

export interface DeviceVersionFacts {
  currentVersion: string;
  deviceModel: string;
  hardwareVersion: string;
  /** SHA-256 of the running image, when known: the server may answer with a delta from it. */
  runningSha256?: string | undefined;
}

export class UpdateClient {
  constructor(
    private readonly http: HttpPort,
    private readonly config: ResolvedConfig,
    private readonly log: LogPort,
  ) {}

  /** GET available-updates: the raw body (the trust checks parse it), or why the server could not be asked. */
  async check(facts: DeviceVersionFacts): Promise<UpdateCheck> {
    const path = availableUpdatesPath(this.config.deviceId, { current_version: facts.currentVersion, device_model: facts.deviceModel, hardware_version: facts.hardwareVersion, running_sha256: facts.runningSha256 });
    try {
      const res = await this.http.request({
        method: "GET",
        url: this.config.serverUrl + path,
        headers: this.auth(),
        timeoutMs: this.config.requestTimeoutMs,
      });
      if (res.status !== 200) return { kind: "unreachable", message: `available-updates answered ${res.status}` };
      return { kind: "offer", body: res.body };
    } catch (e) {
      return { kind: "unreachable", message: errorMessage(e) };
    }
  }

  /** GET a device-facing document (the key list) as text; rejects on network errors and non-200 answers. */
  async fetchText(path: string): Promise<string> {
    const res = await this.http.request({ method: "GET", url: this.config.serverUrl + path, headers: this.auth(), timeoutMs: this.config.requestTimeoutMs });
    if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
    return res.body;
  }

  /** POST one status report: "retry" on network or server errors, "done" once the server answered for good. */
  report(updateId: string, report: StatusReport): Promise<"done" | "retry"> {
    return this.post(updateStatusPath(updateId), JSON.stringify(report), { update_id: updateId, status: report.status });
  }

  /** POST a health report (health.ts), with the same "done"/"retry" answers. */
  health(report: HealthReport): Promise<"done" | "retry"> {
    return this.post(deviceHealthPath(this.config.deviceId), JSON.stringify(report), { update_id: report.update_id, status: "health" });
  }

  private post(path: string, body: string, what: { update_id: string | null; status: string }): Promise<"done" | "retry"> {
    // A promise chain, not an async function: progress reports are in flight during the download, and a
    // suspended async frame would keep more of the agent's memory.
    const request = {
      method: "POST" as const,
      url: this.config.serverUrl + path,
      headers: { "content-type": "application/json", "x-api-key": this.config.apiKey },
      body,
      timeoutMs: this.config.requestTimeoutMs,
    };
    return this.http.request(request).then(
      (res) => {
        if (res.status >= 200 && res.status < 300) return "done";
        if (res.status >= 500 || res.status === 429 || res.status === 401) return "retry";
        // Any other 4xx: the server will never accept this report (e.g. the update was cancelled); do not resend forever.
        this.log.log("warn", "status report refused", { ...what, http: res.status });
        return "done";
      },
      (e) => {
        this.log.log("info", "status report deferred", { ...what, error: errorMessage(e) });
        return "retry";
      },
    );
  }

  /** Opens the firmware body from byte `from` (a Range request past 0). Rejects with TransientError on network errors. */
  download(url: string, from: number, timeoutMs: number): Promise<HttpBodyStream> {
    const headers = this.auth();
    if (from > 0) headers.range = `bytes=${from}-`;
    return transient(this.http.stream(url, headers, timeoutMs));
  }

  private auth(): Record<string, string> {
    return { "x-api-key": this.config.apiKey };
  }
}
