// `npm start` end to end, as a user runs it (non-interactive output), with a small fleet.
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";

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
  it("rolls out v1.1.0 through an approved canary, pauses the bad v1.2.0 and rolls it back, exits 0", async () => {
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
    expect(s.rollbacks.device).toBeGreaterThanOrEqual(2);
    expect(s.rollbacks.server + s.rollbacks.device).toBe(4);
    expect(s.bytesServed).toBeGreaterThan(0);
    // Plain output: no terminal control sequences, a line per campaign event, the summary table.
    expect(out).not.toMatch(/\x1b\[/);
    expect(out).toMatch(/event approved/);
    expect(out).toMatch(/event stage_started .*name=canary/);
    expect(out).toMatch(/event threshold_crossed/);
    expect(out).toMatch(/event rollback/);
    expect(out).toMatch(/devices per version\s+│ v1\.1\.0 8/);
  }, 70_000);
});
