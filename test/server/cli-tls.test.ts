// ota-server's TLS choice as a process: on all interfaces it generates a CA and certificate into the data dir on the
// first start (the same CA on the next), prints the fingerprint and serves HTTPS; plain only when asked or on loopback.
import { spawn, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { disposeTestDatabases, testDatabase } from "../support/test-database";

const bin = new URL("../../bin/ota-server.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ota-cli-tls-"));

/** Starts the server, returns what it printed up to "ready" and stops it. */
async function startOnce(...args: string[]): Promise<{ out: string; url: string; health: number | string }> {
  const { env } = await testDatabase(join(dir, "data"));
  const proc = spawn(process.execPath, [bin, "--port", "0", "--mqtt-port", "0", "--auth-port", "0", "--data-dir", join(dir, "data"), "--log-dir", join(dir, "logs"), "--quiet", ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  let out = "";
  try {
    const url = await new Promise<string>((resolve, reject) => {
      proc.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /ota-server ready: (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      proc.stderr.on("data", (d: Buffer) => (out += d.toString()));
      proc.on("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const ca = url.startsWith("https:") ? readFileSync(join(dir, "data/tls/ca.pem"), "utf8") : undefined;
    const health = await new Promise<number | string>((resolve) => {
      const get = url.startsWith("https:") ? https.get(`${url}/health`, { ca }, (r) => (r.resume(), resolve(r.statusCode ?? 0))) : null;
      if (!get) return void fetch(`${url}/health`).then((r) => resolve(r.status), (e: Error) => resolve(e.message));
      get.on("error", (e) => resolve(e.message));
    });
    return { out, url, health };
  } finally {
    proc.kill("SIGTERM");
    await new Promise((r) => proc.once("exit", r));
  }
}

describe("ota-server TLS", () => {
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await disposeTestDatabases();
  });

  it("on all interfaces: a CA and certificate generated on the first start, kept on the next, fingerprint printed, HTTPS", async () => {
    const first = await startOnce("--host", "0.0.0.0");
    expect(first.url).toMatch(/^https:\/\/localhost:\d+$/);
    expect(first.health).toBe(200); // verified against the generated CA
    const leaf = new X509Certificate(readFileSync(join(dir, "data/tls/server.pem")));
    expect(first.out).toContain(`certificate SHA-256 ${leaf.fingerprint256}`);
    expect(first.out).toMatch(/generated now/);
    expect(leaf.verify(new X509Certificate(readFileSync(join(dir, "data/tls/ca.pem"))).publicKey)).toBe(true);
    const ca = readFileSync(join(dir, "data/tls/ca.pem"), "utf8");
    const second = await startOnce("--host", "0.0.0.0");
    expect(second.out).not.toMatch(/generated now/);
    expect(readFileSync(join(dir, "data/tls/ca.pem"), "utf8")).toBe(ca);
  }, 60_000);

  it("plain HTTP only with --insecure-http or on a loopback host", async () => {
    for (const args of [["--host", "0.0.0.0", "--insecure-http"], ["--host", "127.0.0.1"]]) {
      const r = await startOnce(...args);
      expect(r.url).toMatch(/^http:\/\//);
      expect(r.health).toBe(200);
      expect(r.out).not.toMatch(/TLS/);
    }
  }, 60_000);

  it("--tls-cert without --tls-key, or with --insecure-http, is a usage error", () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [bin, "--data-dir", join(dir, "bad"), "--log-dir", join(dir, "logs"), ...args], { encoding: "utf8", timeout: 20_000 });
    const lone = run("--tls-cert", "x.pem");
    expect([lone.status, lone.stderr.split("\n")[0]]).toEqual([2, "ota-server: --tls-cert and --tls-key go together"]);
    const both = run("--tls-cert", "x.pem", "--tls-key", "k.pem", "--insecure-http");
    expect(both.status).toBe(2);
    const missing = run("--tls-cert", join(dir, "none.pem"), "--tls-key", join(dir, "none-key.pem"));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^ota-server: --tls-cert\/--tls-key: ENOENT/);
  });
});
