// ota-server as a process: a port in use names the flag that changes it, and a server started with
// `npx ota-server &` stops when `kill $!` stops npx (the pid $! names).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { disposeTestDatabases, testDatabase } from "../support/test-database";

const bin = new URL("../../bin/ota-server.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ota-cli-proc-"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function occupy(): Promise<[Server, number]> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return [s, (s.address() as { port: number }).port];
}

describe("ota-server process behaviour", () => {
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await disposeTestDatabases();
  });

  it("a port in use is one line naming the flag to change", async () => {
    const [taken, port] = await occupy();
    const { env } = await testDatabase(join(dir, "ports"));
    try {
      const run = (...args: string[]) => spawnSync(process.execPath, [bin, "--host", "127.0.0.1", "--data-dir", join(dir, "ports"), "--log-dir", join(dir, "logs"), ...args], { encoding: "utf8", timeout: 20_000, env });
      const rest = run("--port", String(port), "--no-mqtt", "--no-dev-token");
      expect(rest.status).toBe(1);
      expect(rest.stderr.trimEnd().split("\n")).toEqual([`ota-server: port ${port} (REST) is already in use`, expect.stringMatching(/choose another with --port/)]);
      const mqtt = run("--port", "0", "--mqtt-port", String(port), "--no-dev-token");
      expect(mqtt.status).toBe(1);
      expect(mqtt.stderr).toMatch(new RegExp(`port ${port} \\(MQTT\\) is already in use\\n  \\(choose another with --mqtt-port`));
      expect(mqtt.stderr).not.toMatch(/\n\s+at /);
    } finally {
      taken.close();
    }
  });

  it("`npx ota-server &` then `kill $!` stops the server too, not only npx", async () => {
    const work = join(dir, "npx");
    mkdirSync(join(work, "node_modules/.bin"), { recursive: true });
    symlinkSync(bin, join(work, "node_modules/.bin/ota-server"));
    const { env } = await testDatabase(join(work, ".ota-data"));
    const npx = spawn("npx", ["ota-server", "--quiet", "--host", "127.0.0.1", "--port", "0", "--mqtt-port", "0", "--auth-port", "0"], { cwd: work, stdio: "ignore", env });
    const pidFile = join(work, ".ota-data/ota-server.pid");
    for (let i = 0; i < 200 && !existsSync(pidFile); i++) await sleep(100);
    const serverPid = Number(readFileSync(pidFile, "utf8"));
    expect(serverPid).not.toBe(npx.pid); // $! is npx, not the server
    npx.kill("SIGTERM");
    for (let i = 0; i < 40 && alive(serverPid); i++) await sleep(100);
    const stillUp = alive(serverPid);
    if (stillUp) process.kill(serverPid, "SIGKILL");
    expect(stillUp, "the server outlived npx").toBe(false);
    expect(existsSync(pidFile)).toBe(false); // a clean shutdown, not a kill
  });

  it("serves no dev tokens unless started with --dev-tokens, and then only on loopback", async () => {
    const start = async (...args: string[]) => {
      // All interfaces in plain HTTP (--insecure-http), so the loopback rule is what refuses, not TLS.
      const dataDir = join(dir, `dev-${args.length}`);
      const { env } = await testDatabase(dataDir);
      const proc = spawn(process.execPath, [bin, "--host", "0.0.0.0", "--insecure-http", "--port", "0", "--no-mqtt", "--data-dir", dataDir, "--log-dir", join(dir, "logs"), ...args], { stdio: ["ignore", "pipe", "inherit"], env });
      let out = "";
      const started = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no start: ${out}`)), 20_000);
        proc.stdout!.on("data", (c: Buffer) => {
          const m = /(ota_server_started [^\n]*)/.exec((out += String(c)));
          if (m && out.includes("ota-server ready")) (clearTimeout(t), resolve(m[1]!));
        });
      });
      const url = /url=(\S+)/.exec(started)![1]!;
      return { proc, started, url };
    };
    const post = (url: string) => fetch(`${url}/api/v1/auth/dev-token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user_id: "u" }) });
    const plain = await start();
    try {
      expect(plain.started).not.toMatch(/auth_url=/);
      expect((await post(plain.url)).status).toBe(404);
    } finally {
      plain.proc.kill("SIGTERM");
    }
    const dev = await start("--dev-tokens", "--auth-port", "0");
    try {
      const authUrl = /auth_url=(\S+)/.exec(dev.started)![1]!;
      const token = (await (await post(authUrl)).json()) as { role: string };
      expect(token.role).toBe("operator");
      expect((await post(dev.url)).status).toBe(200); // loopback caller on the main port
    } finally {
      dev.proc.kill("SIGTERM");
    }
  }, 60_000);
});
