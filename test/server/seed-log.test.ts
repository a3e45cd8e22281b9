// The HOWTO's three log commands (tail -f, grep "campaign_id=…", grep update_failed | awk '{print $NF}'
// | sort | uniq -c), run with bash against logs/ota_service.log of a real `ota-server` process started
// from bin/ with its defaults (log file under the working directory, text lines, also on the terminal).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppImage } from "../../esp-image/app-image";
import { RotatingFile } from "../../server-stub/log";
import { disposeTestDatabases, testDatabase } from "../support/test-database";
import { firmwareForm } from "./harness";

const bin = new URL("../../bin/ota-server.js", import.meta.url).pathname;
const sh = (script: string, cwd: string) => execFileSync("bash", ["-c", script], { cwd, encoding: "utf8", timeout: 10_000 });

describe("the seed's log commands against a real run", () => {
  let dir: string;
  let proc: ChildProcess;
  let terminal = "";
  let url = "";
  let token = "";
  let campaignId = "";

  const call = async (method: string, path: string, body?: unknown) => {
    const form = body instanceof FormData;
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body && !form ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: form ? body : JSON.stringify(body) } : {}),
    });
    const json = (await res.json()) as any;
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "ota-seed-log-"));
    const { env } = await testDatabase(join(dir, ".ota-data"));
    proc = spawn(process.execPath, [bin, "--port", "0", "--dev-tokens", "--auth-port", "0", "--mqtt-port", "0", "--host", "127.0.0.1"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env });
    proc.stdout!.on("data", (c: Buffer) => (terminal += c.toString()));
    const authUrl = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ready line: ${terminal}`)), 20_000);
      proc.stdout!.on("data", () => {
        const m = /auth_url=(\S+)[\s\S]*ota-server ready: (\S+)/.exec(terminal);
        if (m) (clearTimeout(t), (url = m[2]!), resolve(m[1]!));
      });
    });
    const dev = await fetch(`${authUrl}/api/v1/auth/dev-token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user_id: "ops", email: "ops@example.com", expires_in: 600 }) });
    token = ((await dev.json()) as { access_token: string }).access_token;
    // A campaign over four devices: two fail their self-test, one times out, one completes.
    for (const d of ["d1", "d2", "d3", "d4"]) await call("POST", "/api/v1/devices", { device_id: d, device_model: "ESP32-DEVKIT", hardware_version: "1.0", current_version: "1.0.0" });
    const fw = await call("POST", "/api/v1/firmware", firmwareForm({ name: "fw", version: "1.1.0", device_model: "ESP32-DEVKIT" }, buildAppImage({ version: "1.1.0" })));
    campaignId = (await call("POST", "/api/v1/campaigns", { name: "logs", firmware_id: fw.firmware_id, target_devices: ["d1", "d2", "d3", "d4"], failure_threshold_percent: 100 })).campaign_id;
    await call("POST", `/api/v1/campaigns/${campaignId}/start`);
    const members = (await call("GET", `/api/v1/campaigns/${campaignId}/devices`)).devices as Array<{ device_id: string; update_id: string }>;
    const outcome: Record<string, [string, string | null]> = { d1: ["failed", "SELF_TEST_FAILED"], d2: ["rolled_back", "SELF_TEST_FAILED"], d3: ["failed", "TIMEOUT"], d4: ["completed", null] };
    for (const m of members) {
      const [status, code] = outcome[m.device_id]!;
      const report = (sequence: number, s: string, extra: object = {}) => call("POST", `/api/v1/updates/${m.update_id}/status`, { status: s, progress: 50, timestamp: new Date().toISOString(), sequence, ...extra });
      await report(1, "downloading");
      await report(2, "installing");
      await report(3, status, code ? { error_code: code, error_message: "from the test" } : {});
    }
  }, 60_000);

  afterAll(async () => {
    if (proc.exitCode === null) proc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    await disposeTestDatabases();
  });

  it("writes logs/ota_service.log under the working directory, and the same lines to the terminal", () => {
    const log = readFileSync(join(dir, "logs/ota_service.log"), "utf8");
    expect(log).toMatch(/^\S+Z INFO ota_server_started url=/m);
    expect(terminal).toContain(log.split("\n").find((l) => l.includes("update_failed"))!);
  });

  it("tail -f logs/ota_service.log shows the newest lines", () => {
    const out = sh("timeout 1 tail -f logs/ota_service.log || true", dir);
    expect(out.trimEnd().split("\n")).toHaveLength(10);
    expect(out).toMatch(/update_(failed|completed) campaign_id=/);
  });

  it('grep "campaign_id=…" finds the campaign\'s events', () => {
    const out = sh(`grep "campaign_id=${campaignId}" logs/ota_service.log`, dir);
    const events = out.trimEnd().split("\n").map((l) => l.split(" ")[2]);
    expect(events).toContain("campaign_started");
    expect(events.filter((e) => e === "update_failed")).toHaveLength(3);
    expect(events).toContain("update_completed");
  });

  it("grep update_failed | awk '{print $NF}' | sort | uniq -c counts failures by error code", () => {
    const out = sh(`grep "update_failed" logs/ota_service.log | \\\n  awk '{print $NF}' | sort | uniq -c`, dir);
    expect(out.trimEnd().split("\n").map((l) => l.trim().split(/\s+/))).toEqual([["2", "error_code=SELF_TEST_FAILED"], ["1", "error_code=TIMEOUT"]]);
  });

  it("stops on SIGTERM within the bounded time and removes its pid file", async () => {
    expect(existsSync(join(dir, ".ota-data/ota-server.pid"))).toBe(true);
    const t0 = Date.now();
    proc.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => proc.once("exit", resolve));
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(existsSync(join(dir, ".ota-data/ota-server.pid"))).toBe(false);
    expect(readFileSync(join(dir, "logs/ota_service.log"), "utf8")).toMatch(/ota_server_stopping signal=SIGTERM\n$/);
  });
});

describe("log rotation", () => {
  it("renames the file to .1, .2, .3 once it would pass the size limit, keeping three", () => {
    const dir = mkdtempSync(join(tmpdir(), "ota-rotate-"));
    try {
      const file = new RotatingFile(join(dir, "nested/logs/ota_service.log"), 1000);
      const line = `${"x".repeat(99)}\n`;
      for (let i = 0; i < 55; i++) file.write(line);
      file.close();
      const names = readdirSync(join(dir, "nested/logs")).sort();
      expect(names).toEqual(["ota_service.log", "ota_service.log.1", "ota_service.log.2", "ota_service.log.3"]);
      for (const n of names) expect(statSync(join(dir, "nested/logs", n)).size).toBeLessThanOrEqual(1000);
      expect(statSync(join(dir, "nested/logs/ota_service.log")).size).toBe(500); // 55 lines = 5 full files + 5 lines
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
