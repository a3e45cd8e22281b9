// Runs every curl block of the OTA service HOWTO (test/fixtures/ota-service-howto.md, a copy of
// the seed HOWTO), text unchanged except host ports and placeholders, against `ota-server` started
// from bin/ like `npx ota-server`. Device-side steps the HOWTO assumes happen elsewhere (devices
// registering, installing) are done in between through the API.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppImage } from "../../esp-image/app-image";
import { disposeTestDatabases, testDatabase } from "../support/test-database";

const root = new URL("../../", import.meta.url).pathname;
const hasCurl = spawnSync("curl", ["--version"]).status === 0;

function curlBlocks(): string[] {
  const md = readFileSync(join(root, "test/fixtures/ota-service-howto.md"), "utf8");
  return [...md.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => /^\s*curl /m.test(b));
}

describe.skipIf(!hasCurl)("HOWTO curl flow against ota-server", () => {
  let proc: ChildProcess;
  let dir: string;
  let url = "";
  let authUrl = "";
  const vars: Record<string, string> = { token: "", firmware_id: "", campaign_id: "", device_id: "device3", update_id: "" };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "ota-howto-"));
    const { env } = await testDatabase(join(dir, "data"));
    proc = spawn(process.execPath, [join(root, "bin/ota-server.js"), "--port", "0", "--dev-tokens", "--auth-port", "0", "--mqtt-port", "0", "--host", "127.0.0.1", "--data-dir", join(dir, "data")], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env });
    let out = "";
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 20_000);
      proc.stdout!.on("data", (c: Buffer) => {
        out += c.toString();
        const m = /ota_server_started url=(\S+) mqtt_url=\S+ auth_url=(\S+)/.exec(out);
        if (m) {
          [url, authUrl] = [m[1]!, m[2]!];
          clearTimeout(t);
          resolve();
        }
      });
      proc.once("exit", (code) => reject(new Error(`server exited ${code}: ${out}`)));
    });
    writeFileSync(join(dir, "firmware.bin"), buildAppImage({ version: "1.2.0", size: 100_000 }));
  }, 30_000);

  afterAll(async () => {
    proc?.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
    await disposeTestDatabases();
  });

  /** Runs a HOWTO block as written (curl wrapped to print the status), returns [status, body]. */
  function run(block: string): [number, any] {
    let script = block.replaceAll("http://localhost:8221", url).replaceAll("http://localhost:8202", authUrl).replaceAll("<token>", vars.token!);
    for (const k of ["firmware_id", "campaign_id", "device_id", "update_id"]) script = script.replaceAll(`{${k}}`, vars[k]!);
    const out = execFileSync("bash", ["-c", `curl() { command curl -s -w '\\n%{http_code}' "$@"; }\n${script}`], { cwd: dir, encoding: "utf8" });
    const lines = out.trimEnd().split("\n");
    const status = Number(lines.pop());
    const text = lines.join("\n");
    let body: any = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return [status, body];
  }

  async function call(method: string, path: string, body?: unknown, apiKey?: string): Promise<any> {
    const headers: Record<string, string> = apiKey ? { "x-api-key": apiKey } : { authorization: `Bearer ${vars.token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const r = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return r.json();
  }

  /** A device installs whatever it is offered, as the device agent would. */
  async function deviceInstalls(key: string, deviceId: string): Promise<void> {
    const env = await call("GET", `/api/v1/devices/${deviceId}/available-updates?current_version=1.0.0`, undefined, key);
    expect(env.update_available).toBe(true);
    for (const status of ["downloading", "installing", "completed"]) await call("POST", `/api/v1/updates/${env.manifest.update_id}/status`, { status }, key);
  }

  it("every curl line works as written", async () => {
    const blocks = curlBlocks();
    expect(blocks.length).toBe(23);
    const keys: Record<string, string> = {};
    const seen: string[] = [];
    for (const block of blocks) {
      const path = /curl (?:-X (\w+) )?"?http:\/\/localhost:\d+(\/[^\s"?]*)/.exec(block)!;
      const label = `${path[1] ?? "GET"} ${path[2]}`;
      seen.push(label);

      if (label === "POST /api/v1/campaigns") {
        // Devices and the fleet group the HOWTO's campaign targets were registered elsewhere.
        for (const d of ["device1", "device2", "device3"]) keys[d] = (await call("POST", "/api/v1/devices", { device_id: d, device_model: "IOT-2024", hardware_version: "1.0", current_version: "1.0.0" })).api_key;
        await call("POST", "/api/v1/groups", { name: "production_fleet", device_ids: ["fleet-1", "fleet-2", "fleet-3", "fleet-4", "fleet-5"] });
      }
      // The first 25 % is a seeded sample of the registered devices: two of device1..3, so device1 or device2 (which the
      // HOWTO's rollback names) is always among them. One installs, as the device agent would.
      if (label === "POST /api/v1/campaigns/{campaign_id}/pause") {
        const members = (await call("GET", `/api/v1/campaigns/${vars.campaign_id}/devices`)).devices as Array<{ device_id: string; state: string }>;
        const inFlight = members.filter((d) => d.state === "in_progress").map((d) => d.device_id).sort();
        expect(inFlight.join(",")).toMatch(/^device[123],device[123]$/);
        vars.installed = inFlight[0]!; // device1 or device2; the other one stays in flight, so the campaign can pause
        await deviceInstalls(keys[vars.installed]!, vars.installed);
      }

      const [status, body] = run(block);
      expect(status, `${label}: ${JSON.stringify(body)}`).toBeGreaterThanOrEqual(200);
      expect(status, `${label}: ${JSON.stringify(body)}`).toBeLessThan(300);

      switch (label) {
        case "POST /api/v1/auth/dev-token":
          vars.token = body.access_token;
          break;
        case "POST /api/v1/firmware":
          expect(body).toMatchObject({ firmware_id: "fw_v1.2.0", version: "1.2.0", image_format: "esp-app", chip_id: 0 });
          vars.firmware_id = body.firmware_id;
          // Older images to roll back to: 1.0.0 (what the devices run) and 1.1.0 (the HOWTO's target_version).
          for (const version of ["1.0.0", "1.1.0"]) {
            const f = new FormData();
            f.append("metadata", JSON.stringify({ name: "old", version, device_model: "IOT-2024" }));
            f.append("file", new Blob([new Uint8Array(5000).fill(version.length + Number(version[2]))]), "old.bin");
            const r = await fetch(url + "/api/v1/firmware", { method: "POST", headers: { authorization: `Bearer ${vars.token}` }, body: f });
            expect(r.status).toBe(201);
          }
          break;
        case "GET /api/v1/firmware/{firmware_id}/download":
          expect(createHash("sha256").update(readFileSync(join(dir, "firmware.bin"))).digest("hex")).toBe(createHash("sha256").update(buildAppImage({ version: "1.2.0", size: 100_000 })).digest("hex"));
          break;
        case "POST /api/v1/campaigns":
          expect(body).toMatchObject({ status: "created", deployment_strategy: "staged", requires_approval: true, total_devices: 8 });
          vars.campaign_id = body.campaign_id;
          break;
        case "POST /api/v1/campaigns/{campaign_id}/start":
          expect(body).toMatchObject({ status: "in_progress", total_devices: 2, in_progress_devices: 2 }); // 25 % of 8
          break;
        case "POST /api/v1/campaigns/{campaign_id}/rollback":
          expect(body.rollback_updates.map((r: any) => r.device_id)).toEqual([vars.installed]);
          break;
        case "POST /api/v1/devices/{device_id}/rollback":
          expect(body).toMatchObject({ rollback: true, to_version: "1.1.0" });
          vars.update_id = body.update_id;
          break;
        case "POST /api/v1/updates/{update_id}/retry":
          expect(body).toMatchObject({ status: "scheduled", retry_of: vars.update_id });
          break;
        case "GET /api/v1/stats/campaigns/{campaign_id}":
          expect(body).toMatchObject({ status: "cancelled", completed_devices: 1 });
          break;
      }
    }
    expect(seen).toContain("POST /api/v1/firmware/{firmware_id}/compatibility-check");
    expect(seen).toContain("POST /api/v1/devices/bulk/update");
  });
});
