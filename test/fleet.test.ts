// The fleet simulator's pieces: behaviour mixes and `ota-sim fleet` against a real server.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../server-stub/clock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boardBehaviour, firmwareBehaviour, parseMix, pickBehaviour, unitHash } from "../host-sim/device/behaviour-mix";
import type { Harness } from "./server/harness";
import { api, asAdmin, startHarness } from "./server/harness";
import { pgMode } from "./support/test-database";

describe("behaviour mixes", () => {
  it("parses --mix and rejects nonsense", () => {
    expect(parseMix("healthy=0.9,fail-self-test=0.05,crash=0.05")).toEqual({ healthy: 0.9, "fail-self-test": 0.05, crash: 0.05 });
    expect(() => parseMix("broken=0.1")).toThrow(/unknown behaviour/);
    expect(() => parseMix("crash=2")).toThrow(/between 0 and 1/);
    expect(() => parseMix("crash=0.6,hang=0.6")).toThrow(/more than 1/);
  });

  it("assigns seeded board behaviours in about the asked proportions", () => {
    const mix = parseMix("fail-self-test=0.2,crash=0.1");
    const boards = Array.from({ length: 2000 }, (_, i) => boardBehaviour(mix, 7, `sim-${i}`));
    const share = (b: string) => boards.filter((x) => x === b).length / boards.length;
    expect(share("fail-self-test")).toBeGreaterThan(0.16);
    expect(share("fail-self-test")).toBeLessThan(0.24);
    expect(share("crash")).toBeGreaterThan(0.07);
    expect(share("crash")).toBeLessThan(0.13);
    expect(boardBehaviour(mix, 7, "sim-5")).toBe(boards[5]); // stable
    expect(pickBehaviour({}, unitHash("x"))).toBe("healthy");
  });

  it("an image's mix picks per device; a board behaviour spares the factory image", () => {
    const sim = { behaviour: "healthy" as const, mix: { "fail-self-test": 0.5 }, mix_seed: 3 };
    const picks = Array.from({ length: 400 }, (_, i) => firmwareBehaviour(sim, { deviceId: `d${i}`, version: "1.2.0" }));
    const failing = picks.filter((p) => p === "fail-self-test").length;
    expect(failing).toBeGreaterThan(150);
    expect(failing).toBeLessThan(250);
    expect(firmwareBehaviour({ behaviour: "crash" }, { deviceId: "d1", version: "2.0.0" })).toBe("crash");
    expect(firmwareBehaviour({ behaviour: "healthy" }, { deviceId: "d1", version: "1.0.0", board: "crash" })).toBe("healthy");
    expect(firmwareBehaviour({ behaviour: "healthy" }, { deviceId: "d1", version: "1.1.0", board: "crash" })).toBe("crash");
    expect(firmwareBehaviour(null, { deviceId: "d1", version: "1.1.0" })).toBe("healthy");
  });
});

describe("ota-sim fleet", () => {
  let h: Harness;
  beforeAll(async () => {
    // Server time = real time: the devices check the manifests' validity window against their own clocks.
    h = await startHarness({}, { dataDir: mkdtempSync(join(tmpdir(), "ota-fleet-")), clock: new ManualClock(Date.now()) });
  });
  afterAll(async () => h?.close());

  it("registers and boots N devices with their own keys and MQTT sessions, and stops on SIGINT", async () => {
    const child = spawn(process.execPath, ["bin/ota-sim.js", "fleet", "--devices", "5", "--server", h.server.url, "--token", h.admin, "--prefix", "fl-", "--mix", "crash=0.2", "--seed", "4"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    const end = Date.now() + 20_000;
    while (!/fleet: 5 devices/.test(out)) {
      if (Date.now() > end) throw new Error(`fleet did not come up:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(out).toMatch(/fl-001 … fl-005/);
    expect(out).toMatch(/mqtt mqtt:\/\//);
    const list = await api(h, "GET", "/api/v1/devices?limit=100", asAdmin(h));
    const ids = (list.body.devices as { device_id: string }[]).map((d) => d.device_id).filter((id) => id.startsWith("fl-"));
    expect(ids.sort()).toEqual(["fl-001", "fl-002", "fl-003", "fl-004", "fl-005"]);
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(out).toMatch(/fleet stopped: versions 1\.0\.0=5/);
  }, 30_000);

  it("in-process: an operator API key works as the credential, and the fleet takes an update over MQTT", async () => {
    const { Fleet } = await import("../host-sim/fleet/fleet");
    const { buildAppImage } = await import("../esp-image/app-image");
    const { uploadFirmware } = await import("./server/harness");
    const key = (await api(h, "POST", "/api/v1/auth/api-keys", { ...asAdmin(h), body: { role: "operator", name: "fleet" } })).body.api_key as string;
    const f = await Fleet.start({ devices: 3, serverUrl: h.server.url, token: key, prefix: "ak-", factoryImage: buildAppImage({ version: "1.0.0", size: 32 * 1024 }) });
    try {
      await f.waitConnected(10_000);
      expect(f.versions()).toEqual({ "1.0.0": 3 });
      expect(f.phases()).toEqual({ idle: 3 });
      const fw = await uploadFirmware(h, { version: "1.1.0", device_model: "ESP32-DEVKIT" }, buildAppImage({ version: "1.1.0", size: 48 * 1024 }));
      for (const d of f.devices) await api(h, "POST", `/api/v1/devices/${d.id}/update`, { ...asAdmin(h), body: { firmware_id: fw.firmware_id } });
      const end = Date.now() + 15_000;
      while (f.versions()["1.1.0"] !== 3) {
        if (Date.now() > end) throw new Error(`not updated: ${JSON.stringify(f.versions())}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(f.downloadedBytes()).toBeGreaterThanOrEqual(3 * 48 * 1024);
      for (const d of f.devices) expect(d.dev.flash.residentBytes).toBeLessThan(256 * 1024); // sparse
    } finally {
      await f.stop();
    }
  }, 30_000);
});

describe("native ed25519 (fleet speed-ups)", () => {
  // The key store on a SQLite file of its own, no server: nothing for the PG run to add.
  it.skipIf(pgMode)("server signatures are byte-identical to tweetnacl's, and the device-side native verifier agrees with it", async () => {
    const nacl = (await import("tweetnacl")).default;
    const { KeyStore } = await import("../server-stub/signing/keystore");
    const { openDb } = await import("../server-stub/db");
    const { nativeVerifyEd25519 } = await import("../host-sim/device/node-hash");
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const db = openDb(join(mkdtempSync(join(tmpdir(), "ks-")), "k.sqlite"));
    const keys = new KeyStore(db, { now: () => Date.now() });
    const k = keys.ensureActive();
    const row = db.prepare("SELECT secret_key FROM signing_keys WHERE key_id = ?").get(k.key_id) as { secret_key: string };
    const secret = Buffer.from(row.secret_key, "base64");
    const publicKey = Buffer.from(k.public_key, "base64");
    for (const text of ["", "x", '{"a":1}', "é".repeat(300)]) {
      const msg = new TextEncoder().encode(text);
      const { signature } = keys.sign(msg);
      const sig = Buffer.from(signature, "base64");
      expect(sig).toEqual(Buffer.from(nacl.sign.detached(msg, secret)));
      expect(nativeVerifyEd25519(msg, sig, publicKey)).toBe(true);
      const bad = Uint8Array.from(sig);
      bad[5] ^= 1;
      expect(nativeVerifyEd25519(msg, bad, publicKey)).toBe(nacl.sign.detached.verify(msg, bad, publicKey));
      expect(nativeVerifyEd25519(msg, bad, publicKey)).toBe(false);
    }
    expect(nativeVerifyEd25519(new Uint8Array(1), new Uint8Array(64), new Uint8Array(31))).toBe(false);
    db.close();
  });
});

describe("ota-sim fleet: a release that crash-reboots after confirming", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({}, { dataDir: mkdtempSync(join(tmpdir(), "ota-fleet-")), clock: new ManualClock(Date.now()) });
  });
  afterAll(async () => h?.close());

  it("the metric trigger (crash reboots against the 1.0.0 baseline) pauses the canary and rolls back every device that took the release", async () => {
    const { buildAppImage } = await import("../esp-image/app-image");
    const { uploadFirmware } = await import("./server/harness");
    const child = spawn(process.execPath, ["bin/ota-sim.js", "fleet", "--devices", "8", "--server", h.server.url, "--token", h.admin, "--prefix", "cr-",
      "--mix", "crash-after-confirm=0.5", "--seed", "3", "--status-every", "1", "--poll-interval", "2"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    const until = async <T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 40_000): Promise<T> => {
      const end = Date.now() + ms;
      for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > end) throw new Error(`${what} did not happen:\n${out.slice(-600)}\n${h.logs.filter((l) => /rollback|update_failed|cancel|campaign_/.test(l)).slice(-30).join("")}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      await until("fleet start", async () => /fleet: 8 devices/.test(out));
      await uploadFirmware(h, { version: "1.0.0", device_model: "ESP32-DEVKIT" }, buildAppImage({ version: "1.0.0", size: 64 * 1024 })); // the rollback target
      const fw = await uploadFirmware(h, { version: "1.1.0", device_model: "ESP32-DEVKIT" }, buildAppImage({ version: "1.1.0", size: 64 * 1024 }));
      const ids = Array.from({ length: 8 }, (_, i) => `cr-${String(i + 1).padStart(3, "0")}`);
      // A canary of 4 whose soak outlasts the test (the server's clock is manual and stands still): the other 4 stay
      // on 1.0.0 as the baseline, and the trigger must act on the canary's health reports alone.
      const created = await api(h, "POST", "/api/v1/campaigns", { ...asAdmin(h), body: {
        name: "crashy", firmware_id: fw.firmware_id, target_devices: ids, deployment_strategy: "canary", canary_percentage: 50, canary_duration_minutes: 5,
        auto_rollback: true, rollback_triggers: ["metric_threshold"], failure_threshold_percent: 20,
        health_check_config: { soak_minutes: 60, metric_rules: [{ metric: "crash_reboots", max: 0, min_sample: 4 }] },
      } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body.warnings).toEqual([]);
      const id = created.body.campaign_id as string;
      await api(h, "POST", `/api/v1/campaigns/${id}/start`, asAdmin(h));
      const c = await until("the trigger", async () => {
        const body = (await api(h, "GET", `/api/v1/campaigns/${id}`, asAdmin(h))).body;
        return body.status !== "in_progress" ? body : null;
      });
      expect(c.status).toBe("paused");
      expect(c.pause_reason).toMatch(/^metric crash_reboots <= 0: [1-4] of 4 devices on the release out of range .* vs 0 of 4 on the previous version/);
      const events = (await api(h, "GET", `/api/v1/stats/campaigns/${id}`, asAdmin(h))).body.events;
      const fired = events.find((e: any) => e.type === "threshold_crossed").detail;
      expect(fired).toMatchObject({ trigger: "metric_threshold", rule: "crash_reboots <= 0", sample: 4, observed: { baseline_out_of_range: 0, baseline_sample: 4 } });
      expect(fired.observed.release_out_of_range).toBeGreaterThan(0);
      expect(fired.observed.worst).toBeGreaterThan(0);
      // Every device that took 1.1.0 (the canary) goes back to 1.0.0 (the factory image runs healthy on every board);
      // the rest never received it.
      const rowsNow = async () => (await api(h, "GET", `/api/v1/campaigns/${id}/devices`, asAdmin(h))).body.devices as { device_id: string; stage: number; state: string; rollback_update_id: string | null }[];
      const canary = (await rowsNow()).filter((r) => r.stage === 0).map((r) => r.device_id);
      expect(canary).toHaveLength(4);
      await until("the rollback", async () => {
        const devs = (await api(h, "GET", "/api/v1/devices?limit=100", asAdmin(h))).body.devices as { device_id: string; current_version: string }[];
        return devs.filter((d) => d.device_id.startsWith("cr-")).every((d) => d.current_version === "1.0.0") && (await rowsNow()).filter((r) => r.stage === 0).every((r) => r.state === "rolled_back");
      });
      const rows = await rowsNow();
      expect(rows.filter((r) => r.stage === 0).every((r) => r.rollback_update_id !== null)).toBe(true);
      expect(rows.filter((r) => r.stage !== 0).map((r) => r.state)).toEqual(["pending", "pending", "pending", "pending"]);
      const reports = (await api(h, "GET", `/api/v1/devices/${canary[0]}/health`, asAdmin(h))).body.reports as { version: string }[];
      expect(reports.some((r) => r.version === "1.1.0")).toBe(true);
    } finally {
      child.kill("SIGINT");
      expect(await exited).toBe(0);
    }
    expect(out).toMatch(/fleet stopped: versions 1\.0\.0=8/);
  }, 60_000);
});
