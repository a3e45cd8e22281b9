// Pieces of the release CLI that need no server: the terminal redraw of `ota campaign watch` and the SSE parser.
import { describe, expect, it } from "vitest";
import { ProgressView, type CampaignSnapshot } from "../cli/progress";
import { SseParser } from "../cli/sse";

describe("ota without a server", () => {
  it("on a terminal the progress block is redrawn in place", () => {
    let screen = "";
    const io = { out: (l: string) => (screen += `${l}\n`), err: () => {}, write: (t: string) => (screen += t), isTTY: true, env: {}, signal: new AbortController().signal };
    const stage = { index: 0, name: "all", state: "active", total_devices: 4, completed: 1, failed: 1, rolled_back: 0, in_progress: 2, pending: 0, skipped: 0, cancelled: 0 };
    const snap: CampaignSnapshot = { campaign_id: "c1", status: "in_progress", total_devices: 4, completed_devices: 1, failed_devices: 1, rolled_back_devices: 0, in_progress_devices: 2, pending_devices: 0, failure_rate_percent: 50, stages: [stage] };
    const view = new ProgressView(io, false);
    view.render(snap);
    expect(screen).toBe("campaign c1 in_progress: 1/4 completed, 1 failed, 0 rolled back, failure rate 50%\n  stage 1 all        [██████▒▒▒▒▒▒░░░░░░░░░░░░]    2/4 active  1 failed, 2 updating\n");
    screen = "";
    view.render({ ...snap, completed_devices: 3, stages: [{ ...stage, completed: 3, in_progress: 0 }] });
    expect(screen.startsWith("\x1b[2A\x1b[Jcampaign c1 in_progress: 3/4")).toBe(true); // up 2 lines, clear, draw
    expect(screen).toContain("[██████████████████▒▒▒▒▒▒]    4/4 active  1 failed\n");
  });

  it("parses SSE split anywhere, with CRLF, comments and multi-line data", () => {
    const wire = ": keep-alive\r\nid: 7\r\nevent: campaign.started\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\nid: 8\ndata: x\n\n";
    for (let cut = 0; cut <= wire.length; cut++) {
      const p = new SseParser();
      const got = [...p.push(wire.slice(0, cut)), ...p.push(wire.slice(cut))];
      expect(got, `cut at ${cut}`).toEqual([{ id: "7", event: "campaign.started", data: '{"a":\n1}' }, { id: "8", event: "message", data: "x" }]);
    }
  });
});
