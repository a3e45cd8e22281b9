// The dashboard in headless Chromium (Debian's, driven by playwright-core) against a real server and a simulated
// fleet: sign in, upload, an approved canary campaign watched live to completion, a bad release paused at its
// threshold and rolled back from the page, device tags edited by an operator, and a viewer who sees no actions
// and is refused when it forges one.
// Screenshots for the README go to docs/screenshots/.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { chromium, type BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chooseMixSeed } from "../demo/demo";
import { buildAppImage } from "../esp-image/app-image";
import { Fleet } from "../host-sim/fleet/fleet";
import { startOtaServer, type OtaServer } from "../server-stub/server";
import { testDatabase, type TestDatabase } from "./support/test-database";
import { createCampaign, expectAccessible, expectFits, pickFile, pressByKeyboard, shot } from "./helpers/dashboard-page";

// Browser globals, used only inside page.evaluate callbacks (the project's tsconfig has no DOM lib).
declare const document: any, window: any, sessionStorage: any;

const CHROMIUM = "/usr/bin/chromium";
const present = existsSync(CHROMIUM);
if (!present && process.env.CI !== "true") console.log(`dashboard browser test skipped: no ${CHROMIUM} (apt-get install chromium)`);

const DEVICES = 8;
const GROUP = "dash";
/** The README's screenshots are rewritten only on request; otherwise they are taken into the temporary folder. */
const UPDATE_SHOTS = process.env.UPDATE_SCREENSHOTS === "1";

describe.runIf(present || process.env.CI === "true")("dashboard in Chromium", () => {
  let dir: string;
  let server: OtaServer;
  let fleet: Fleet;
  let browser: BrowserContext;
  let adminKey: string;
  let viewerKey: string;
  let shots: string;
  let database: TestDatabase;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "ota-dash-"));
    database = await testDatabase();
    server = await startOtaServer({ dataDir: join(dir, "data"), port: 0, host: "127.0.0.1", authPort: null, mqttPort: 0, tickIntervalMs: 250, logger: pino({ level: "silent" }), databaseUrl: database.databaseUrl });
    adminKey = server.ctx.apiKeys.create("admin", { name: "dash-admin" }).api_key;
    viewerKey = server.ctx.apiKeys.create("viewer", { name: "dash-viewer" }).api_key;
    // Devices poll over HTTP every ~2 s (no MQTT push): each stage takes a few seconds, long enough to watch.
    fleet = await Fleet.start({
      devices: DEVICES, serverUrl: server.url, token: adminKey, group: GROUP, model: "ESP32-DEVKIT", seed: 1, mqttUrl: null,
      factoryImage: buildAppImage({ version: "1.0.0" }), pollIntervalMs: 2000, agent: { retryBaseMs: 250 },
    });
    await fleet.waitConnected(20_000);
    shots = UPDATE_SHOTS ? "docs/screenshots" : join(dir, "shots");
    mkdirSync(shots, { recursive: true });
    browser = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 720 },
      // `npm start` speaks TLS with a CA made for the run, which this browser has no reason to know.
      ignoreHTTPSErrors: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await fleet?.stop();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
    await database?.dispose();
  });

  it("takes an operator from sign-in through a canary rollout and a rolled-back bad release", async () => {
    // Every device has polled once: the fleet page counts contacts when it loads (and every 15 s).
    await expect.poll(() => server.ctx.db.prepare("SELECT COUNT(*) AS n FROM devices WHERE last_contact_at IS NOT NULL").get(), { timeout: 10_000 }).toEqual({ n: DEVICES });
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    // Sign in with the keyboard only: the field has a label, Enter submits.
    await page.getByLabel("API key or token").focus();
    await page.keyboard.type(adminKey);
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#role").textContent()).toBe("admin");
    await expect.poll(() => page.locator('[data-stat="devices"] .big').textContent()).toBe(String(DEVICES));
    expect(await page.locator('[data-stat="online"] .big').textContent()).toBe(String(DEVICES));
    await expectAccessible(page);
    await shot(page, shots, "fleet-1280");

    await page.getByRole("link", { name: "Firmware" }).click();
    const good = buildAppImage({ version: "1.1.0", projectName: "sensor-app" });
    await pickFile(page, "v1.1.0.bin", good);
    await expect.poll(() => page.locator('[data-field="verdict"]').textContent()).toBe("valid ESP app image");
    expect(await page.locator('[data-field="version"]').textContent()).toBe("1.1.0");
    expect(await page.locator('[data-field="sha256"]').textContent()).toBe(createHash("sha256").update(good).digest("hex"));
    await expectAccessible(page);
    await shot(page, shots, "upload-1280");
    await page.getByLabel("Device model").fill("ESP32-DEVKIT");
    await page.getByRole("button", { name: "Confirm upload" }).click();
    await expect.poll(() => page.getByRole("table", { name: /Catalogue/ }).textContent()).toContain("1.1.0");

    // A corrupted image is named as such before anything is sent.
    const bad = buildAppImage({ version: "1.1.1" });
    bad[100] ^= 0xff;
    await pickFile(page, "broken.bin", bad);
    await expect.poll(() => page.locator('[data-field="verdict"]').textContent()).toMatch(/checksum byte/);
    await page.getByRole("button", { name: "Discard" }).click();

    await createCampaign(page, { name: "v1.1.0 canary", group: GROUP, version: "1.1.0", strategy: "canary", canary: "25", batch: "3", threshold: "10", approval: true });
    // Every status the page shows, as it shows it; the log would be gone if the page reloaded.
    await page.evaluate(() => {
      window.statusLog = [];
      window.completedLog = [];
      new window.MutationObserver(() => {
        const text = document.querySelector("h1 .badge")?.textContent;
        if (text && window.statusLog.at(-1) !== text) window.statusLog.push(text);
        const done = [...document.querySelectorAll('[data-field="stage-counts"]')].reduce((n: number, el: any) => n + Number(/^(\d+) \//.exec(el.textContent)?.[1] ?? 0), 0);
        if (window.completedLog.at(-1) !== done) window.completedLog.push(done);
      }).observe(document.querySelector("main"), { childList: true, subtree: true, characterData: true });
    });
    await expect.poll(() => page.locator("h1 .badge").textContent()).toBe("created");
    await pressByKeyboard(page, "Approve");
    await expect.poll(() => page.locator("[data-action]").allTextContents()).toContain("Start");
    await pressByKeyboard(page, "Start");
    // Watched without reloading: the stages fill in as devices report, until the campaign completes.
    await expect.poll(() => page.locator("h1 .badge").textContent(), { timeout: 45_000 }).toBe("completed");
    expect(await page.evaluate(() => window.statusLog)).toEqual(["created", "in progress", "completed"]);
    // Completed devices went up in several steps on the same page: the stages filled in as devices reported.
    const completed: number[] = await page.evaluate(() => window.completedLog);
    expect(completed.at(-1)).toBe(DEVICES);
    expect(new Set(completed.filter((n) => n > 0 && n < DEVICES)).size).toBeGreaterThanOrEqual(2);
    const stages = await page.locator('[data-field="stage-counts"]').allTextContents();
    expect(stages.length).toBeGreaterThanOrEqual(2); // the canary, then the batches
    expect(stages.reduce((n, t) => n + Number(/^(\d+) \//.exec(t)![1]), 0)).toBe(DEVICES);
    expect(fleet.versions()).toEqual({ "1.1.0": DEVICES });
    await shot(page, shots, "campaign-1280");

    // A bad release: most boards fail its self-test; the first batch crosses 20 % and the campaign pauses.
    const stage1 = fleet.devices.slice(0, DEVICES / 2).map((d) => d.id);
    const badImage = buildAppImage({ version: "1.2.0", sim: { mix: { "fail-self-test": 0.75 }, mix_seed: chooseMixSeed(stage1, 1) } });
    await page.getByRole("link", { name: "Firmware" }).click();
    await pickFile(page, "v1.2.0.bin", badImage);
    await page.getByLabel("Device model").fill("ESP32-DEVKIT");
    await page.getByRole("button", { name: "Confirm upload" }).click();
    await expect.poll(() => page.getByRole("table", { name: /Catalogue/ }).textContent()).toContain("1.2.0");
    await createCampaign(page, { name: "v1.2.0 staged", group: GROUP, version: "1.2.0", strategy: "staged", batch: String(DEVICES / 2), threshold: "20", approval: false });
    await page.locator('[data-action="start"]').click();
    await expect.poll(() => page.locator("h1 .badge").textContent(), { timeout: 45_000 }).toBe("paused");
    expect(await page.locator('[data-field="failure-rate"]').textContent()).toMatch(/over the threshold/);
    expect(await page.locator('[data-field="pause-reason"]').textContent()).toMatch(/threshold|failure/i);
    await shot(page, shots, "paused-1280");
    page.once("dialog", (d) => void d.accept());
    await page.locator('[data-action="rollback"]').click();
    await expect.poll(() => fleet.versions(), { timeout: 45_000 }).toEqual({ "1.1.0": DEVICES });
    await expect.poll(() => page.locator('[data-field="stage-counts"]').first().textContent(), { timeout: 15_000 }).toMatch(/rolled back by the server/);

    expect(await page.locator("#live-status").textContent()).toBe("live");

    // The event log has every event since sign-in (the page never reloaded), filterable by type.
    await page.getByRole("link", { name: "Events" }).click();
    const log = page.getByRole("table", { name: /Live event log/ });
    await expect.poll(() => log.textContent()).toContain("campaign.threshold_crossed");
    expect(await log.textContent()).toContain("campaign.completed");
    await page.getByLabel("Filter by type prefix").fill("update.rolled_back");
    const types = await log.locator("tbody tr td:nth-child(2)").allTextContents();
    expect(types.length).toBeGreaterThan(0);
    expect(new Set(types)).toEqual(new Set(["update.rolled_back"]));
    await expectAccessible(page);

    // A board whose self-test failed: its page shows the update history with the error code, and its last reports.
    const failing = server.ctx.db.prepare("SELECT device_id FROM updates WHERE error_code = 'SELF_TEST_FAILED' LIMIT 1").get() as { device_id: string };
    await page.getByRole("table", { name: /Live event log/ }).getByRole("link", { name: failing.device_id }).first().click();
    await expect.poll(() => page.getByRole("table", { name: "Update history" }).textContent()).toContain("SELF_TEST_FAILED");
    expect(await page.getByRole("table", { name: "Last reports" }).textContent()).toContain("update.rolled_back");
    await shot(page, shots, "device-1280");

    await page.setViewportSize({ width: 390, height: 760 });
    await page.goBack();
    await page.goBack();
    await expect.poll(() => page.locator("h1 .badge").textContent()).toBe("paused");
    await expectFits(page, 390);
    await shot(page, shots, "campaign-390");
    await page.goto(`${server.url}/#/`);
    await expect.poll(() => page.locator('[data-bars="versions"]').textContent()).toContain("1.1.0");
    await expectFits(page, 390);
    await shot(page, shots, "fleet-390");
    await page.close();
  }, 150_000);

  it("lets an operator edit a device's tags, which the fleet list shows and a campaign can target", async () => {
    const operatorKey = server.ctx.apiKeys.create("operator", { name: "dash-operator" }).api_key;
    const { device_id: id } = server.ctx.db.prepare("SELECT device_id FROM devices ORDER BY device_id LIMIT 1").get() as { device_id: string };
    const tagsOnServer = async () => ((await (await fetch(`${server.url}/api/v1/devices/${id}`, { headers: { "X-API-Key": operatorKey } })).json()) as { tags: string[] }).tags;
    const page = await browser.newPage();
    await page.goto(`${server.url}/#token=${operatorKey}`);
    await expect.poll(() => page.locator("#role").textContent()).toBe("operator");
    await page.goto(`${server.url}/#/devices/${id}`);
    const input = page.getByLabel("Tags", { exact: true });
    await expect.poll(() => input.count()).toBe(1);
    await input.fill("site:berlin, beta");
    await page.getByRole("button", { name: "Save tags" }).click();
    await expect.poll(tagsOnServer, { timeout: 10_000 }).toEqual(["beta", "site:berlin"]); // the server sorts them
    await expect.poll(() => page.locator("dd .tags").allTextContents()).toEqual(["beta site:berlin "]);
    // A tag the server refuses: its code reaches the operator, the tags stay as they were.
    await input.fill("no spaces/slashes");
    await page.getByRole("button", { name: "Save tags" }).click();
    await expect.poll(() => page.locator("#toast").textContent(), { timeout: 10_000 }).toMatch(/Tags refused: .*\(400 /);
    expect(await tagsOnServer()).toEqual(["beta", "site:berlin"]);
    await page.goto(`${server.url}/#/`);
    await expect.poll(() => page.getByRole("row", { name: new RegExp(id) }).locator(".tags").allTextContents()).toEqual(["beta site:berlin "]);
    // A campaign for the tagged boards: the form's tags become its target_filter.
    await page.getByRole("link", { name: "Campaigns" }).click();
    await page.getByLabel("Name").fill("beta boards");
    await page.getByLabel("Target tags").fill("beta");
    await page.getByRole("button", { name: "Create campaign" }).click();
    await expect.poll(() => page.url(), { timeout: 10_000 }).toMatch(/#\/campaigns\/.+/);
    const campaignId = decodeURIComponent(page.url().split("#/campaigns/")[1]!);
    const row = server.ctx.db.prepare("SELECT config FROM campaigns WHERE campaign_id = ?").get(campaignId) as { config: string };
    expect(JSON.parse(row.config).target_filter).toEqual({ tags: ["beta"] });
    await page.close();
  }, 60_000);

  it("shows a viewer no actions, and the server refuses the one it forges", async () => {
    const page = await browser.newPage();
    const { campaigns } = (await (await fetch(`${server.url}/api/v1/campaigns`, { headers: { "X-API-Key": viewerKey } })).json()) as { campaigns: Array<{ status: string; campaign_id: string }> };
    const paused = campaigns.find((c) => c.status === "paused") ?? campaigns[0]!;
    await page.goto(`${server.url}/#token=${viewerKey}`);
    await expect.poll(() => page.locator("#role").textContent()).toBe("viewer");
    expect(page.url()).not.toContain(viewerKey); // the ready-login fragment is taken out of the address
    await page.goto(`${server.url}/#/campaigns/${paused.campaign_id}`);
    await expect.poll(() => page.locator("h1 .badge").count()).toBe(1);
    await expect.poll(() => page.locator('[data-field="stage-counts"]').count()).toBeGreaterThan(0);
    expect(await page.locator("[data-action]").count()).toBe(0);
    await page.goto(`${server.url}/#/campaigns`);
    await expect.poll(() => page.getByRole("table", { name: /Campaigns/ }).count()).toBe(1);
    expect(await page.locator("#create-title").count()).toBe(0);
    const { device_id: deviceId } = server.ctx.db.prepare("SELECT device_id FROM devices ORDER BY device_id LIMIT 1").get() as { device_id: string };
    await page.goto(`${server.url}/#/devices/${deviceId}`);
    await expect.poll(() => page.getByRole("table", { name: /Update history/ }).count()).toBe(1);
    expect(await page.locator("#d-tags").count()).toBe(0); // tags shown, no field to edit them
    await page.goto(`${server.url}/#/firmware`);
    await expect.poll(() => page.getByRole("table", { name: /Catalogue/ }).count()).toBe(1);
    expect(await page.locator("#fw-file").count()).toBe(0);
    // Forged from the page with the viewer's own credential: refused by the server, not just hidden.
    const forged = await page.evaluate(async (id) => {
      const key = sessionStorage.getItem("ota.credential")!;
      const res = await fetch(`/api/v1/campaigns/${id}/rollback`, { method: "POST", headers: { "X-API-Key": key, "Content-Type": "application/json" }, body: "{}" });
      return { status: res.status, body: (await res.json()) as { error: { code: string } } };
    }, paused.campaign_id);
    expect(forged.status).toBe(403);
    expect(forged.body.error.code).toBe("FORBIDDEN");
    await page.close();
  }, 60_000);

  it("npm start -- --keep-running prints a dashboard URL that signs the browser in", async () => {
    // 8 boards: the bad release needs failing, crashing and healthy ones in its first batch (demo.ts)
    const child = spawn(process.execPath, ["bin/ota-demo.js", "--devices", "8", "--plain", "--keep-running", "--timeout", "60"], { stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    try {
      let out = "";
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no dashboard line within 60 s:\n${out}`)), 60_000);
        child.stdout.on("data", (chunk) => {
          out += chunk;
          const m = /Dashboard \(signed in as operator\): (\S+)/.exec(out);
          if (m) (clearTimeout(timer), resolve(m[1]!));
        });
      });
      expect(url).toMatch(/^https:\/\/[\w.]+:\d+\/#token=\S+$/);
      const page = await browser.newPage();
      await page.goto(url);
      await expect.poll(() => page.locator("#role").textContent()).toBe("operator");
      expect(page.url()).not.toContain("token=");
      await expect.poll(() => page.locator('[data-stat="devices"] .big').textContent()).toBe("8");
      await page.close();
    } finally {
      child.kill("SIGINT");
      await exited;
    }
  }, 90_000);
});
