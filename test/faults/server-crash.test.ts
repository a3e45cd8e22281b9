// Reliability harness 4 (child process): `kill -9` of the server (bin/ota-server.js) in the middle of a
// campaign, a restart on the same data directory and port, and the campaign finishes with every device record
// intact and every device on the new version.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createDeviceFlash, programPartition } from "../../host-sim/device-flash";
import { SimDevice } from "../../host-sim/device/sim-device";
import { TEST_AGENT } from "../helpers/e2e";
import { disposeTestDatabases, testDatabase } from "../support/test-database";
import { appImage, FULL, MODEL, partitionOf, printCounts } from "./support";
import { freePort } from "../support/free-port";

const DEVICES = FULL ? 40 : 12;

async function startServer(dataDir: string, port: number): Promise<ChildProcess> {
  const { env } = await testDatabase(dataDir); // the restart after kill -9 finds the same database
  const child = spawn(process.execPath, ["bin/ota-server.js", "--port", String(port), "--host", "127.0.0.1", "--data-dir", dataDir, "--no-mqtt", "--dev-tokens", "--auth-port", "0", "--log-level", "warn"], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
  });
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 20_000;
    const poll = async () => {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/health`)).status === 200) return resolve(child);
      } catch {
        /* not up yet */
      }
      if (child.exitCode !== null) return reject(new Error(`server exited with ${child.exitCode}`));
      if (Date.now() > deadline) return reject(new Error("server did not start"));
      setTimeout(poll, 100);
    };
    void poll();
  });
}

describe("kill -9 of the server during a campaign", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "ota-crash-"));
  let child: ChildProcess | null = null;
  afterAll(async () => {
    child?.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
    await disposeTestDatabases();
  });

  it(`${DEVICES} devices, one kill -9 mid-campaign: the campaign completes, no device record lost`, async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    child = await startServer(dataDir, port);
    const call = async (method: string, path: string, token: string | null, body?: unknown, form?: FormData) => {
      const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      if (body !== undefined) headers["content-type"] = "application/json";
      const res = await fetch(base + path, { method, headers, body: form ?? (body !== undefined ? JSON.stringify(body) : undefined) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };
    const admin = (await call("POST", "/api/v1/auth/dev-token", null, { user_id: "crash-admin", role: "admin", expires_in: 3600 })).body.access_token as string;
    const keys = (await call("GET", "/api/v1/keys", admin)).body.keys.map((k: { key_id: string; public_key: string }) => ({ keyId: k.key_id, publicKey: k.public_key }));
    const uploadFw = async (version: string) => {
      const f = new FormData();
      f.append("metadata", JSON.stringify({ name: `fw ${version}`, version, device_model: MODEL }));
      f.append("file", new Blob([appImage(version)]), "fw.bin");
      const r = await call("POST", "/api/v1/firmware", admin, undefined, f);
      expect(r.status).toBe(201);
      return r.body.firmware_id as string;
    };
    await uploadFw("1.0.0");
    const fw = await uploadFw("1.1.0");
    const ids = Array.from({ length: DEVICES }, (_, i) => `crash-${i}`);
    const devices: SimDevice[] = [];
    for (const id of ids) {
      const r = await call("POST", "/api/v1/devices", admin, { device_id: id, device_model: MODEL, hardware_version: "1.0", current_version: "1.0.0" });
      expect(r.status).toBe(201);
      const flash = createDeviceFlash();
      programPartition(flash, partitionOf(flash, "ota_0"), appImage("1.0.0"));
      devices.push(new SimDevice({ id, flash, serverUrl: base, apiKey: r.body.api_key, trustedKeys: keys, agent: { ...TEST_AGENT, maxDownloadAttempts: 30, selfTestDeadlineMs: 30_000 }, network: { bytesPerSecond: 150_000 } }));
    }
    const camp = await call("POST", "/api/v1/campaigns", admin, { name: "crash", firmware_id: fw, target_devices: ids, deployment_strategy: "immediate" });
    expect(camp.status).toBe(201);
    const campaignId = camp.body.campaign_id as string;
    expect((await call("POST", `/api/v1/campaigns/${campaignId}/start`, admin, {})).status).toBeLessThan(300);

    // Every device keeps cycling (as a polling device would) until it runs the new version. The self-test deadline
    // outlasts the restart: a new image that cannot reach the server within it rolls back, by design.
    const deadline = Date.now() + (FULL ? 120_000 : 45_000);
    const runs = devices.map(async (dev) => {
      for (;;) {
        const r = await dev.runCycle();
        if (r.version === "1.1.0" && r.lastBoot !== "restarting") return r;
        if (Date.now() > deadline) return r;
        await new Promise((res) => setTimeout(res, 200));
      }
    });
    // Kill once some devices are mid-download.
    while (devices.reduce((n, d) => n + d.http.downloaded, 0) < appImage("1.1.0").length * 2) await new Promise((r) => setTimeout(r, 20));
    child.kill("SIGKILL");
    await new Promise((r) => child!.once("exit", r));
    const killedAt = devices.reduce((n, d) => n + d.http.downloaded, 0);
    child = await startServer(dataDir, port);
    const results = await Promise.all(runs);

    // The campaign engine ticks every second: wait for it to see the last reports.
    let campaign = (await call("GET", `/api/v1/campaigns/${campaignId}`, admin)).body;
    for (let i = 0; i < 100 && campaign.status !== "completed"; i++) {
      await new Promise((r) => setTimeout(r, 200));
      campaign = (await call("GET", `/api/v1/campaigns/${campaignId}`, admin)).body;
    }
    const listed = (await call("GET", "/api/v1/devices?limit=1000", admin)).body.devices as Array<{ device_id: string; current_version: string }>;
    const onNew = results.filter((r) => r.version === "1.1.0").length;
    printCounts(`kill -9 during a campaign: ${DEVICES} devices, killed after ${killedAt} bytes served, devices on the new version: ${onNew}, device records: ${listed.length}, campaign: ${campaign.status}`);
    const stuck = devices.filter((_, i) => results[i]!.version !== "1.1.0").map((d) => `${d.options.id}:\n  ${d.logs.filter((l) => /error|warn|failed/.test(l)).slice(0, 6).join("\n  ")}`);
    expect(stuck.join("\n")).toBe("");
    expect(listed.map((d) => d.device_id).sort()).toEqual([...ids].sort());
    expect(onNew).toBe(DEVICES);
    expect(listed.every((d) => d.current_version === "1.1.0")).toBe(true);
    expect(campaign.status).toBe("completed");
  }, FULL ? 180_000 : 90_000);
});
