// Graceful shutdown of the ota-server process: on SIGTERM it stops accepting, lets a download in flight finish,
// and cuts it at the --drain-seconds deadline.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { get, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { disposeTestDatabases, testDatabase } from "../support/test-database";
import { firmwareForm, randomBytes } from "./harness";

const bin = new URL("../../bin/ota-server.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ota-drain-"));
/** Larger than what loopback socket buffers hold, so a reader that stops reading keeps the download in flight. */
const IMAGE_BYTES = 24 * 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startServer(name: string, drainSeconds: number): Promise<{ proc: ChildProcess; url: string; key: string; exited: Promise<number | null> }> {
  const dataDir = join(dir, name);
  const common = ["--data-dir", dataDir, "--log-dir", join(dir, `${name}-logs`)];
  const { env } = await testDatabase(dataDir);
  const created = spawnSync(process.execPath, [bin, "api-key", "create", "--role", "operator", ...common], { encoding: "utf8", env });
  const key = (JSON.parse(created.stdout) as { api_key: string }).api_key;
  const proc = spawn(process.execPath, [bin, "--host", "127.0.0.1", "--port", "0", "--no-mqtt", "--quiet", "--drain-seconds", String(drainSeconds), ...common], { stdio: ["ignore", "pipe", "inherit"], env });
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no start: ${out}`)), 20_000);
    proc.stdout!.on("data", (c: Buffer) => {
      const m = /ota-server ready: (\S+)/.exec((out += String(c)));
      if (m) (clearTimeout(t), resolve(m[1]!));
    });
  });
  return { proc, url, key, exited };
}

/** Uploads a large image and starts downloading it; the response is paused after its first chunk. */
async function pausedDownload(url: string, key: string): Promise<{ res: IncomingMessage; received: () => number; done: Promise<"complete" | "cut"> }> {
  const up = await fetch(`${url}/api/v1/firmware`, {
    method: "POST", headers: { "x-api-key": key },
    body: firmwareForm({ device_model: "IOT-2024", name: "big", version: "9.0.0" }, randomBytes(IMAGE_BYTES, 3)),
  });
  expect(up.status).toBe(201);
  const { firmware_id } = (await up.json()) as { firmware_id: string };
  const res = await new Promise<IncomingMessage>((resolve, reject) =>
    get(`${url}/api/v1/firmware/${firmware_id}/download`, { headers: { "x-api-key": key }, agent: false }, resolve).on("error", reject),
  );
  expect(res.statusCode).toBe(200);
  let received = 0;
  const done = new Promise<"complete" | "cut">((resolve) => {
    res.on("data", (c: Buffer) => (received += c.length));
    res.on("end", () => resolve(received === IMAGE_BYTES ? "complete" : "cut"));
    res.on("aborted", () => resolve("cut"));
    res.on("error", () => resolve("cut"));
  });
  await new Promise((r) => res.once("data", r));
  res.pause();
  return { res, received: () => received, done };
}

/** Whether a new connection is refused (the listener is closed). */
const refused = (url: string) => fetch(`${url}/health`).then(() => false, () => true);

describe("ota-server: SIGTERM drains downloads", () => {
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await disposeTestDatabases();
  });

  it("lets a download in flight finish while refusing new connections, then exits 0", async () => {
    const s = await startServer("finish", 20);
    try {
      const dl = await pausedDownload(s.url, s.key);
      const metrics = await (await fetch(`${s.url}/metrics`)).text(); // open: a loopback listener
      expect(metrics).toMatch(/^ota_active_downloads 1$/m);
      s.proc.kill("SIGTERM");
      let closed = false;
      for (let i = 0; i < 50 && !closed; i++) (closed = await refused(s.url)) || (await sleep(100));
      expect(closed, "a new connection was still accepted after SIGTERM").toBe(true);
      expect(dl.received()).toBeLessThan(IMAGE_BYTES); // still in flight
      dl.res.resume();
      expect(await dl.done).toBe("complete");
      expect(await s.exited).toBe(0);
    } finally {
      s.proc.kill("SIGKILL");
    }
  });

  it("cuts a download still running at the --drain-seconds deadline", async () => {
    const s = await startServer("cut", 1);
    try {
      const dl = await pausedDownload(s.url, s.key);
      const t0 = Date.now();
      s.proc.kill("SIGTERM");
      expect(await s.exited).toBe(0); // it hung up on the client that stopped reading, and exited
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(Date.now() - t0).toBeLessThan(5000); // the 1 s deadline, not the 30 s default
      dl.res.resume(); // what the socket had buffered, then the end of a short body
      expect(await dl.done).toBe("cut");
      expect(dl.received()).toBeLessThan(IMAGE_BYTES);
    } finally {
      s.proc.kill("SIGKILL");
    }
  });
});
