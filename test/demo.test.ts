// `npm start` end to end, as a user runs it (non-interactive output), with a small fleet.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { wrap } from "../demo/demo";
import { stageLine } from "../demo/view";

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/ota-demo.js", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`demo did not finish within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe("npm start (the fleet demo)", () => {
  it("rolls out v1.1.0 through an approved canary, pauses the bad v1.2.0 on its crash reboots and rolls it back, exits 0", async () => {
    const { code, out } = await run(["--devices", "8", "--json", "--timeout", "50"], 60_000);
    expect(code, out).toBe(0);
    const line = out.split("\n").find((l) => l.startsWith("DEMO_SUMMARY "));
    expect(line, out).toBeDefined();
    const s = JSON.parse(line!.slice("DEMO_SUMMARY ".length));
    expect(s.ok).toBe(true);
    expect(s.versions).toEqual({ "1.1.0": 8 });
    expect(s.campaigns[0]).toMatchObject({ status: "completed", completed: 8, failed: 0 });
    expect(s.campaigns[1].status).toBe("paused");
    expect(s.campaigns[1].pending).toBe(4); // the second batch never got v1.2.0
    expect(s.rollbacks.server).toBeGreaterThanOrEqual(1);
    expect(s.rollbacks.device).toBeGreaterThanOrEqual(1);
    expect(s.rollbacks.server + s.rollbacks.device).toBe(4);
    expect(s.bytesServed).toBeGreaterThan(0);
    // Plain output: no terminal control sequences, a line per campaign event, the summary table.
    expect(out).not.toMatch(/\x1b\[/);
    expect(out).toMatch(/event approved/);
    expect(out).toMatch(/event stage_started .*name=canary/);
    // Caught by the devices' health (crash reboots after confirming), not by the self-test failures alone.
    expect(out).toMatch(/event threshold_crossed .*trigger=metric_threshold rule="crash_reboots <= 0"/);
    expect(out).toMatch(/event rollback/);
    expect(out).toMatch(/devices per version\s+│ v1\.1\.0 8/);
    // The summary fits an 80-column terminal, and the log it names is still there after the demo.
    const table = out.slice(out.indexOf("devices per version") - 200);
    const summaryLines = table.split("\n").filter((l) => l.includes("│") || /^─+┼─+$/.test(l));
    expect(summaryLines.length).toBeGreaterThan(4);
    for (const l of summaryLines) expect([...l].length, l).toBeLessThanOrEqual(80);
    const logPath = /log (\S+ota_demo\.log)/.exec(out)?.[1];
    expect(logPath, out).toBeDefined();
    expect(existsSync(logPath!)).toBe(true);
  }, 70_000);
});

describe("demo view", () => {
  it("wraps a long summary value at its separators within the room", () => {
    const text = "paused: 2 completed · 0 failed · 4 rolled back · 4 pending · and a part that is far too long for one line";
    const lines = wrap(text, 30);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(30);
    expect(lines[0]).toBe("paused: 2 completed · 0 failed");
    // Nothing lost or reordered: only the separators at the breaks are gone.
    const words = (t: string) => t.replace(/ · /g, " ").split(" ");
    expect(lines.flatMap(words)).toEqual(words(text));
  });

  it("marks a finished stage ✓ only when something in it succeeded", () => {
    const stage = { name: "batch_1", state: "done", total_devices: 4, completed: 0, failed: 1, rolled_back: 3, skipped: 0, cancelled: 0, in_progress: 0 };
    expect(stageLine(stage as never)).toMatch(/ ✗ /);
    expect(stageLine({ ...stage, completed: 1, rolled_back: 2 } as never)).toMatch(/ ✓ /);
  });
});
