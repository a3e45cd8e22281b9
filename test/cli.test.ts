// The release CLI as a user runs it: bin/ota.js as a child process against a real server (in this process,
// manual clock) and a small simulated fleet that reports through the device API.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppImage } from "../esp-image/app-image";
import { api, asAdmin, registerDevice, startHarness, type Harness } from "./server/harness";
import { campaign, settle, setupFleet, type Fleet, type Outcome } from "./server/fleet";

const bin = new URL("../bin/ota.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ota-cli-"));
const config = join(dir, "config.json");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Children still running when the file ends (a test that failed mid-watch) are stopped by afterAll. */
const running = new Set<ChildProcess>();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `ota …`; the config file is ours and no OTA_* variable leaks in from the environment. */
function start(args: string[], env: Record<string, string> = {}): { child: ChildProcess; result: Promise<Run>; output: () => string } {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("OTA_")));
  const child = spawn(process.execPath, [bin, ...args], { env: { ...clean, OTA_CONFIG: config, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c) => (stdout += c));
  child.stderr!.on("data", (c) => (stderr += c));
  running.add(child);
  const result = new Promise<Run>((resolve) => child.on("close", (code) => (running.delete(child), resolve({ code, stdout, stderr }))));
  return { child, result, output: () => stdout };
}

const ota = (...args: string[]) => start(args).result;

let h: Harness;
let f: Fleet;

beforeAll(async () => {
  h = await startHarness();
  f = await setupFleet(h, 13); // d01…d13, model IOT-2024, running 1.0.0
}, 30_000);
afterAll(async () => {
  for (const child of running) child.kill("SIGKILL");
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs `ota campaign watch` while the fleet reports `outcome` for every device the campaign dispatches. Polling is
 * set to once an hour: the watch can only see the campaign move through the event stream.
 */
async function watchWhileFleetReports(id: string, outcome: (deviceId: string) => Outcome, extra: string[] = []): Promise<Run> {
  const watch = start(["campaign", "watch", id, "--interval", "3600", ...extra]);
  let exited = false;
  void watch.result.then(() => (exited = true));
  // The watch draws the campaign once before any device reports: it really follows it, not a finished one.
  for (let i = 0; i < 200 && !exited && !/stage 1/.test(watch.output()) && !/"stages"/.test(watch.output()); i++) await sleep(50);
  while (!exited) {
    await settle(h, f, id, outcome);
    await sleep(150);
  }
  return watch.result;
}

describe("ota login", () => {
  it("stores the server and the credential it checked, mode 0600; a refused credential is not stored", async () => {
    const bad = await ota("login", "--server", h.server.url, "--token", "not-a-jwt");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^ota: UNAUTHORIZED: .+ \(HTTP 401\)\n$/);
    expect(() => statSync(config)).toThrow();

    const ok = await ota("login", "--server", `${h.server.url}/`, "--token", h.admin);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^logged in to http:\/\/localhost:\d+ as ota_admin \(admin\); saved in .+config\.json\n$/);
    expect(statSync(config).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(config, "utf8"))).toEqual({ server: h.server.url, credential: { token: h.admin } });
  }, 30_000);

  it("$OTA_API_KEY overrides the stored credential", async () => {
    const r = await start(["firmware", "list"], { OTA_API_KEY: "wrong-key" }).result;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/UNAUTHORIZED/);
  }, 30_000);
});

describe("ota firmware upload", () => {
  it("takes version and name from the image's app descriptor, the model from --model; --json parses", async () => {
    writeFileSync(join(dir, "good.bin"), buildAppImage({ version: "1.3.0", projectName: "thermostat" }));
    const r = await ota("firmware", "upload", join(dir, "good.bin"), "--model", "IOT-2024", "--json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ firmware_id: "fw_v1.3.0", name: "thermostat", version: "1.3.0", device_model: "IOT-2024" });
    const again = await ota("firmware", "upload", join(dir, "good.bin"), "--model", "IOT-2024");
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^ota: FIRMWARE_EXISTS: firmware 1\.3\.0 for IOT-2024 exists already as fw_v1\.3\.0 \(HTTP 409\)\n$/);
  }, 30_000);

  it("refuses a file that is not an app image before sending anything", async () => {
    writeFileSync(join(dir, "notes.txt"), "not firmware");
    const r = await ota("firmware", "upload", join(dir, "notes.txt"), "--model", "IOT-2024");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not an ESP32 app image/);
  }, 30_000);
});

describe("ota campaign watch", () => {
  it("follows a staged campaign stage by stage and exits 0 when it completes", async () => {
    const created = await ota("campaign", "create", "--name", "good", "--firmware", "fw_v1.3.0", "--strategy", "staged", "--batch-size", "3",
      "--devices", "d01,d02,d03,d04,d05,d06", "--requires-approval", "--json");
    expect(created.code).toBe(0);
    const id = JSON.parse(created.stdout).campaign_id as string;
    const early = await ota("campaign", "start", id);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/^ota: [A-Z_]+: .*approv.* \(HTTP 409\)\n$/i);
    expect((await ota("campaign", "approve", id, "--comment", "ok")).code).toBe(0);
    expect((await ota("campaign", "start", id)).code).toBe(0);

    const watch = await watchWhileFleetReports(id, () => "completed");
    expect(watch.stderr).toBe("");
    expect(watch.code).toBe(0);
    expect(watch.stdout).toMatch(/stage 1 batch 1 +\[#{24}\] +3\/3 done\n/);
    expect(watch.stdout).toMatch(/stage 2 batch 2 +\[#{24}\] +3\/3 done\n/);
    expect(watch.stdout).toMatch(/stage 2 batch 2 +\[\.{24}\] +0\/3 pending\n/); // drawn before it ran
    expect(watch.stdout).toMatch(new RegExp(`campaign ${id} completed \\(exit 0\\)\\n$`));
    expect(watch.stdout).not.toMatch(/polling/);
    expect((await campaign(h, id)).status).toBe("completed");
  }, 60_000);

  it("exits 3 when a bad release pauses at its failure threshold; --json lines parse", async () => {
    writeFileSync(join(dir, "bad.bin"), buildAppImage({ version: "1.4.0", projectName: "thermostat" }));
    expect((await ota("firmware", "upload", join(dir, "bad.bin"), "--model", "IOT-2024")).code).toBe(0);
    const created = await ota("campaign", "create", "--name", "bad", "--firmware", "fw_v1.4.0", "--strategy", "staged", "--batch-size", "3",
      "--devices", "d07,d08,d09,d10,d11,d12", "--threshold", "20", "--min-sample", "3", "--selection", "list_order", "--json");
    const id = JSON.parse(created.stdout).campaign_id as string;
    expect((await ota("campaign", "start", id)).code).toBe(0);

    // Two of the first three boards fail their self-test and roll back: 67 % > 20 %.
    const watch = await watchWhileFleetReports(id, (d) => (d === "d07" ? "completed" : "rolled_back"), ["--json"]);
    expect(watch.stderr).toBe("");
    expect(watch.code).toBe(3);
    const lines = watch.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(1);
    expect(lines[0]).toMatchObject({ campaign_id: id, status: "in_progress" });
    expect(lines.at(-1)).toMatchObject({ campaign_id: id, status: "paused", exit_code: 3, completed_devices: 1, rolled_back_devices: 2 });
    expect(lines.at(-1).stages.map((s: any) => s.state)).toEqual(["active", "pending"]); // held at stage 1

    // Watching it again: already paused, so it says so at once; human output names the reason.
    const again = await ota("campaign", "watch", id);
    expect(again.code).toBe(3);
    expect(again.stdout).toMatch(/stage 1 batch 1 +\[#{8}x{16}\] +3\/3 active {2}2 rolled back\n/);
    expect(again.stdout).toMatch(new RegExp(`campaign ${id} paused: failure rate 66\\.7% > 20% over 3 finished devices \\(exit 3\\)\\n$`));

    // The campaign's story as the event list tells it.
    const story = await ota("events", "--campaign", id, "--type", "campaign.");
    expect(story.code).toBe(0);
    expect(story.stdout).toMatch(new RegExp(`campaign\\.started campaign=${id}`));
    expect(story.stdout).toMatch(new RegExp(`campaign\\.threshold_crossed campaign=${id} .*"status":"paused"`));

    // Cancelled after the pause: the cancel reason is the one shown, and watching it now exits 4.
    const cancelled = await ota("campaign", "cancel", id, "--reason", "bad build");
    expect(cancelled.stdout).toMatch(/\n {2}cancelled: bad build\n/);
    expect(cancelled.stdout).not.toMatch(/paused:/);
    const after = await ota("campaign", "watch", id);
    expect(after.code).toBe(4);
    expect(after.stdout).toMatch(new RegExp(`campaign ${id} cancelled: bad build \\(exit 4\\)\\n$`));
  }, 60_000);

  it("exits 4 when the campaign is cancelled while watched", async () => {
    const created = await ota("campaign", "create", "--name", "cancel-me", "--firmware", "fw_v1.4.0", "--devices", "d01", "--json");
    const id = JSON.parse(created.stdout).campaign_id as string;
    expect((await ota("campaign", "start", id)).code).toBe(0);
    const watch = start(["campaign", "watch", id, "--interval", "3600"]);
    for (let i = 0; i < 200 && !/stage 1/.test(watch.output()); i++) await sleep(50);
    expect((await api(h, "POST", `/api/v1/campaigns/${id}/cancel`, { ...asAdmin(h), body: { reason: "wrong build" } })).status).toBe(200);
    const r = await watch.result;
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/cancelled: wrong build \(exit 4\)/);
  }, 60_000);

  it("an unknown campaign is the server's 404 with its code, exit 1", async () => {
    const r = await ota("campaign", "watch", "camp_nope");
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("ota: CAMPAIGN_NOT_FOUND: campaign camp_nope not found (HTTP 404)\n");
  }, 30_000);
});

describe("ota device", () => {
  it("update, show and rollback one device", async () => {
    const up = await ota("device", "update", "d13", "--firmware", "fw_v1.3.0", "--json");
    expect(up.code).toBe(0);
    const u = JSON.parse(up.stdout);
    expect(u).toMatchObject({ device_id: "d13", firmware_id: "fw_v1.3.0", status: "scheduled" });
    const shown = await ota("device", "show", "d13");
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^d13 {2}model IOT-2024/);
    expect(shown.stdout).toContain(`updating: ${u.update_id} scheduled to 1.3.0`);
    const rb = await ota("device", "rollback", "d13", "--reason", "test");
    expect(rb.code).toBe(1); // d13 never installed anything newer
    expect(rb.stderr).toMatch(/^ota: [A-Z_]+: .+ \(HTTP 4\d\d\)\n$/);
  }, 30_000);

  it("tag sets, adds and removes a device's tags; campaign create --tags targets the devices carrying them all", async () => {
    const set = await ota("device", "tag", "d12", "--set", "site:x,beta");
    expect([set.code, set.stdout]).toEqual([0, expect.stringContaining("tags beta, site:x")]);
    const edited = JSON.parse((await ota("device", "tag", "d12", "--add", "floor=1", "--remove", "beta", "--json")).stdout);
    expect(edited.tags).toEqual(["floor=1", "site:x"]);
    const bad = await ota("device", "tag", "d12", "--set", "no spaces");
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringMatching(/^ota: [A-Z_]+: .+ \(HTTP 400\)\n$/)]);
    expect((await ota("device", "tag", "d12", "--set", "a", "--add", "b")).code).toBe(2);
    const c = JSON.parse((await ota("campaign", "create", "--name", "tagged", "--firmware", "fw_v1.3.0", "--tags", "site:x,floor=1", "--json")).stdout);
    expect(c.target_filter).toEqual({ tags: ["site:x", "floor=1"] });
    const preview = await api(h, "POST", `/api/v1/campaigns/${c.campaign_id}/preview`, asAdmin(h));
    expect(preview.body.devices.map((d: any) => d.device_id)).toEqual(["d12"]);
  }, 30_000);
});

describe("ota events --follow", () => {
  it("prints each new event as a JSON line, and after the server restarts resumes from the last one it saw", async () => {
    const follow = start(["events", "--follow", "--type", "device.", "--json"]);
    const lines = () => follow.output().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    // The stream starts with the next event: re-register until the follower has seen one (it is connected).
    for (let i = 0; i < 100 && lines().length === 0; i++) {
      await registerDevice(h, "ev-1");
      await sleep(200);
    }
    expect(lines()[0]).toMatchObject({ type: expect.stringMatching(/^device\.(registered|updated)$/), device_id: "ev-1" });
    await h.restart({ port: Number(new URL(h.server.url).port) }); // the stream drops
    await registerDevice(h, "ev-2"); // most likely before the follower reconnects: only Last-Event-ID brings it
    for (let i = 0; i < 100 && !lines().some((e) => e.device_id === "ev-2"); i++) await sleep(100);
    follow.child.kill("SIGINT");
    const r = await follow.result;
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(lines().filter((e) => e.device_id === "ev-2")).toEqual([expect.objectContaining({ type: "device.registered", device_id: "ev-2" })]);
    const ids = lines().map((e) => e.id as number);
    expect(ids).toEqual([...ids].sort((a, b) => a - b)); // in order, none twice
    expect(new Set(ids).size).toBe(ids.length);
  }, 60_000);
});

describe("bad usage: one line naming the problem and where to read more, exit 2", () => {
  const cases: Array<[string[], RegExp]> = [
    [["campaign", "create", "--name", "x", "--devices", "d01"], /^ota: campaign create needs --firmware \(see `ota campaign create --help`\)$/],
    [["campaign", "watch"], /^ota: campaign watch needs ID \(see `ota campaign watch --help`\)$/],
    [["campaign", "pause", "c1", "--bogus"], /^ota: Unknown option '--bogus' \(see `ota campaign pause --help`\)$/],
    [["campaign", "launch", "c1"], /^ota: unknown campaign command "launch" \(see `ota campaign --help`\)$/],
    [["deploy"], /^ota: unknown command "deploy" \(see `ota --help`\)$/],
    [["campaign", "watch", "c1", "--interval", "soon"], /^ota: --interval must be a number from 0\.05 to 3600, not "soon"/],
    [["login", "--server", "localhost:8221", "--token", "t"], /^ota: --server must be an http:\/\/ or https:\/\/ URL/],
  ];
  it.each(cases)("ota %j", async (args, message) => {
    const r = await ota(...args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.endsWith("\n")).toBe(true);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr.trimEnd()).toMatch(message);
  }, 30_000);

  it("--help names the command's usage and the watch exit codes", async () => {
    const r = await ota("campaign", "watch", "--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage:\n {2}ota campaign watch ID/);
    expect(r.stdout).toMatch(/3 paused, 4 failed or cancelled/);
  }, 30_000);
});
