// `npm start`: the whole story on a fresh clone. A server stub (embedded broker, fresh data dir, ephemeral
// ports) and a fleet of simulated devices on v1.0.0; an operator, through the REST API, rolls out v1.1.0 with
// an approved canary campaign, then a bad v1.2.0 that fails its self-test on some boards and, worse, passes it
// and then crash-reboots on others: the crash reboots in the devices' health reports fire the metric trigger,
// the campaign pauses, and the server rolls the devices that took it back to v1.1.0.
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import pino from "pino";
import { startOtaServer } from "../server-stub/server";
import { loadOrCreateTls } from "../server-stub/tls";
import { pinnedFetch } from "../host-sim/pinned-fetch";
import type { OtaServer } from "../server-stub/server";
import { pickBehaviour, unitHash } from "../host-sim/device/behaviour-mix";
import { buildAppImage } from "../esp-image/app-image";
import { minorChange } from "../esp-image/minor-change";
import { Fleet } from "../host-sim/fleet/fleet";
import type { CampaignStats } from "./operator";
import { Operator } from "./operator";
import { fmtCounts, plainView, prefixV, ttyView } from "./view";
import type { View } from "./view";
import { campaignStatsPath, devicePath, ROUTES } from "../device/protocol/paths";

const USAGE = `usage: npm start [-- --devices N] [--keep-running] [--mqtt-url URL] [--seed S] [--image-size KiB] [--plain] [--json]
  --devices N      fleet size (default 20, at least 4)
  --keep-running   leave the server and the fleet up afterwards and print the token and URLs for curl
  --mqtt-url URL   use an external broker (it must accept device-id/API-key logins) instead of the embedded one
  --plain          plain lines even on a terminal (the default when stdout is not one)
  --json           end with one line "DEMO_SUMMARY {json}"
  --timeout S      give up after S seconds (default 180)`;

const MODEL = "ESP32-DEVKIT";
/** Shares of boards on which the bad v1.2.0 fails its self-test, and passes it but then crash-reboots. */
const BAD_MIX = { "fail-self-test": 0.25, "crash-after-confirm": 0.5 };

export interface DemoOptions {
  devices: number;
  keepRunning: boolean;
  mqttUrl: string | null;
  seed: number;
  imageKiB: number;
  tty: boolean;
  json: boolean;
  timeoutMs: number;
}

export interface DemoSummary {
  ok: boolean;
  problems: string[];
  devices: number;
  versions: Record<string, number>;
  campaigns: Array<{ name: string; campaign_id: string; status: string; completed: number; failed: number; rolled_back: number; pending: number }>;
  rollbacks: { server: number; device: number };
  bytesServed: number;
  /** Of bytesServed, delta patches; and what those deltas saved against full images. */
  deltaBytesServed: number;
  deltaBytesSaved: number;
  durationS: number;
}

export async function main(argv: string[], write: (s: string) => void = (s) => void process.stdout.write(s)): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        devices: { type: "string" }, "keep-running": { type: "boolean" }, "mqtt-url": { type: "string" }, seed: { type: "string" },
        "image-size": { type: "string" }, plain: { type: "boolean" }, json: { type: "boolean" }, timeout: { type: "string" }, help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    write(USAGE + "\n");
    return 0;
  }
  const devices = Number(values.devices ?? "20");
  if (!Number.isInteger(devices) || devices < 4 || devices > 5000) {
    write(`--devices must be an integer from 4 to 5000\n${USAGE}\n`);
    return 2;
  }
  const opts: DemoOptions = {
    devices,
    keepRunning: Boolean(values["keep-running"]),
    mqttUrl: values["mqtt-url"] ?? null,
    seed: Number(values.seed ?? "1"),
    imageKiB: Number(values["image-size"] ?? "64"),
    tty: Boolean(process.stdout.isTTY) && !values.plain,
    json: Boolean(values.json),
    timeoutMs: Number(values.timeout ?? "180") * 1000,
  };
  try {
    const summary = await runDemo(opts, write);
    return summary.ok ? 0 : 1;
  } catch (e) {
    write(`\ndemo failed: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

export async function runDemo(o: DemoOptions, write: (s: string) => void): Promise<DemoSummary> {
  const t0 = Date.now();
  const deadline = t0 + o.timeoutMs;
  const view: View = o.tty ? ttyView(write) : plainView(write);
  const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`;
  const say = async (text: string) => {
    view.settle();
    view.line(`\n${stamp()} ${o.tty ? `\x1b[1m${text}\x1b[0m` : text}`);
    if (o.tty) await new Promise((r) => setTimeout(r, 800)); // on a terminal, a beat to read the step
  };
  const note = (text: string) => view.line(`${stamp()}   ${text}`);

  const dataDir = mkdtempSync(join(tmpdir(), "ota-demo-"));
  // The server's log outlives the run (the data dir does not): where the server writes its own by default.
  mkdirSync("logs", { recursive: true });
  const logFile = resolve("logs", "ota_demo.log");
  const logStream = createWriteStream(logFile);
  let server: OtaServer | null = null;
  let fleet: Fleet | null = null;
  try {
    await say(`1. Server stub and a fleet of ${o.devices} simulated ESP32s on v1.0.0`);
    // TLS end to end with a private CA generated for this run, pinned by every device. With an external broker
    // (plain, or with a CA of its own) the run stays plain: a pinning device would refuse that broker.
    const tls = o.mqttUrl ? null : loadOrCreateTls(join(dataDir, "tls"), ["localhost", "127.0.0.1"]);
    const cas = tls?.ca ? [tls.ca] : undefined;
    server = await startOtaServer({
      dataDir, port: 0, host: "127.0.0.1", authPort: null, tickIntervalMs: 250, tls,
      ...(o.mqttUrl ? { mqttUrl: o.mqttUrl, mqttPort: null } : { mqttPort: 0 }),
      logger: pino({ level: "info" }, logStream),
    });
    note(`server ${server.url} · MQTT ${server.mqttUrl ?? "-"} · log ${relative(process.cwd(), logFile)}`);
    if (tls) note(`TLS: private CA pinned by every device · server certificate SHA-256 ${tls.fingerprint.slice(0, 23)}…`);
    // The server runs in this process: its own token service signs the operator's token (no dev-token endpoint).
    const op = new Operator(server.url, server.ctx.tokens.issue({ user_id: "demo-operator", email: "operator@example.com", role: "operator" }, 24 * 3600), pinnedFetch(cas));
    const size = o.imageKiB * 1024;
    const deviceMqtt = o.mqttUrl ? withoutCredentials(o.mqttUrl) : server.mqttUrl;
    const factory = buildAppImage({ version: "1.0.0", size });
    fleet = await Fleet.start({
      devices: o.devices, serverUrl: server.url, token: op.token, mqttUrl: deviceMqtt, seed: o.seed, model: MODEL, ...(cas ? { tlsCas: cas } : {}),
      factoryImage: factory, pollIntervalMs: 30_000, agent: { retryBaseMs: 250 },
    });
    await fleet.waitConnected(Math.max(10_000, deadline - Date.now()));
    const ids = fleet.devices.map((d) => d.id);
    const f = fleet;
    note(`${ids.length} devices registered (each with its own API key), booted, on MQTT: ${ids[0]} … ${ids[ids.length - 1]}`);
    const watch = (id: string, done: (c: CampaignStats) => boolean) => watchCampaign(op, id, f, view, note, done, deadline);

    await say("2. Operator uploads v1.1.0 and creates a canary campaign that requires approval");
    // The factory image is on file, and v1.1.0 is a minor change of it: the server builds a delta 1.0.0 → 1.1.0.
    await op.upload({ version: "1.0.0", device_model: MODEL, name: "Sensor firmware 1.0.0 (factory)" }, factory);
    const fw11 = await op.upload({ version: "1.1.0", device_model: MODEL, name: "Sensor firmware 1.1.0", changelog: "faster sensor sampling" }, minorChange(factory, "1.1.0"));
    note(`POST /api/v1/firmware → ${fw11.firmware_id}`);
    const patch = fw11.deltas?.find((d) => d.status === "ready");
    if (patch?.patch_size) note(`delta from ${patch.from_firmware_id}: ${patch.patch_size} bytes instead of ${fw11.file_size} (devices on 1.0.0 rebuild 1.1.0 from their running slot)`);
    const rest = o.devices - Math.max(1, Math.ceil(o.devices * 0.1));
    const c1 = await op.createCampaign({
      name: "v1.1.0 rollout", firmware_id: fw11.firmware_id, deployment_strategy: "canary", target_devices: ids,
      canary_percentage: 10, canary_duration_minutes: 0, batch_size: Math.max(1, Math.ceil(rest / 3)),
      requires_approval: true, failure_threshold_percent: 10, auto_rollback: true, timeout_minutes: 30,
    });
    note(`POST /api/v1/campaigns → ${c1.campaign_id} (${c1.status}, canary 10 % then 3 batches)`);
    try {
      await op.start(c1.campaign_id);
      note("start before approval was accepted?!");
    } catch (e) {
      note(`POST …/start before approval → refused (${String((e as Error).message).match(/: (\d{3})/)?.[1] ?? "error"})`);
    }
    await op.approve(c1.campaign_id, "canary plan reviewed");
    note(`POST …/approve → approved`);
    await op.start(c1.campaign_id);
    note(`POST …/start → in_progress; watching canary, then the staged batches`);
    const r1 = await watch(c1.campaign_id, (c) => ["completed", "failed", "cancelled"].includes(c.status));
    note(`campaign ${r1.status}: ${r1.completed_devices} completed, ${r1.failed_devices} failed`);

    await say(`3. Operator uploads a bad v1.2.0 (fails its self-test on ~25 % of boards, crash-reboots after confirming on ~50 %) and rolls it out in stages`);
    const stage1 = ids.slice(0, Math.ceil(ids.length / 2));
    const mixSeed = chooseMixSeed(stage1, o.seed);
    const fw12 = await op.upload(
      { version: "1.2.0", device_model: MODEL, name: "Sensor firmware 1.2.0", changelog: "new radio driver" },
      buildAppImage({ version: "1.2.0", size, sim: { mix: BAD_MIX, mix_seed: mixSeed } }),
    );
    note(`POST /api/v1/firmware → ${fw12.firmware_id}`);
    const c2 = await op.createCampaign({
      // list_order: the mix seed above was chosen for the boards of the first half, so batch 1 must be exactly them
      // (the v1.1.0 canary above is a seeded spread sample).
      name: "v1.2.0 rollout", firmware_id: fw12.firmware_id, deployment_strategy: "staged", target_devices: ids, selection: "list_order",
      batch_size: stage1.length, failure_threshold_percent: 20, auto_rollback: true, rollback_triggers: ["failure_rate", "health_check", "metric_threshold"], timeout_minutes: 30,
      // Health is judged for 3 s after each device completes (the next batch waits for it); any crash reboot is out of range.
      health_check_config: { soak_minutes: 0.05, max_crash_reboots: 0, metric_rules: [{ metric: "crash_reboots", max: 0, min_sample: 2 }] },
    });
    await op.start(c2.campaign_id);
    note(`campaign ${c2.campaign_id}: staged, 2 batches of ${stage1.length}, failure threshold 20 %, health triggers (crash reboots), auto-rollback on`);
    const r2 = await watch(c2.campaign_id, (c) => {
      if (!["paused", "failed", "completed", "cancelled"].includes(c.status)) return false;
      const rollbacksOpen = ["scheduled", "downloading", "installing"].reduce((n, s) => n + (c.rollback_updates_by_status[s] ?? 0), 0);
      return c.in_progress_devices === 0 && c.completed_devices === 0 && rollbacksOpen === 0 && Object.keys(f.versions()).length === 1 && f.versions()["1.1.0"] === ids.length;
    });
    note(`campaign ${r2.status}: ${r2.rolled_back_by_device} failed their self-test and rolled themselves back, ${r2.rolled_back_by_server} rolled back by the server, ${r2.pending_devices} never got it`);

    await say("4. Summary");
    const stats = await op.stats();
    const versions = f.versions();
    const summary: DemoSummary = {
      ok: true, problems: [], devices: ids.length, versions,
      campaigns: [r1, r2].map((c, i) => ({ name: i === 0 ? "v1.1.0 rollout" : "v1.2.0 rollout", campaign_id: c.campaign_id, status: c.status, completed: c.completed_devices, failed: c.failed_devices, rolled_back: c.rolled_back_devices, pending: c.pending_devices })),
      rollbacks: { server: r2.rolled_back_by_server, device: r2.failures_by_error_code.SELF_TEST_FAILED ?? 0 },
      bytesServed: stats.bytes_served,
      deltaBytesServed: stats.bytes_served_delta,
      deltaBytesSaved: stats.delta_bytes_saved,
      durationS: Math.round((Date.now() - t0) / 100) / 10,
    };
    if (r1.status !== "completed") summary.problems.push(`v1.1.0 campaign ended ${r1.status}`);
    if (summary.deltaBytesSaved === 0) summary.problems.push("no device took v1.1.0 by delta");
    if (r2.status !== "paused") summary.problems.push(`v1.2.0 campaign ended ${r2.status}, not paused`);
    if (r2.rolled_back_by_server === 0) summary.problems.push("no device was rolled back by the server");
    if (versions["1.1.0"] !== ids.length) summary.problems.push(`not every device is back on v1.1.0: ${fmtCounts(versions)}`);
    summary.ok = summary.problems.length === 0;
    view.settle();
    for (const l of summaryTable(summary, stats.devices_by_version)) view.line(l);
    if (summary.problems.length) view.line(`\nPROBLEMS: ${summary.problems.join("; ")}`);
    if (o.json) view.line(`DEMO_SUMMARY ${JSON.stringify(summary)}`);

    if (o.keepRunning) {
      view.line("");
      view.line("Still running (Ctrl-C to stop).");
      // The token rides in the fragment, which browsers never send; the page takes it out of the address bar.
      view.line(`  Dashboard (signed in as operator): ${server.url}/#token=${op.token}`);
      view.line("Try:");
      if (tls?.dir) {
        // The run's data dir goes when it ends: curl needs the CA meanwhile.
        view.line(`  export OTA=${server.url} TOKEN=${op.token} CURL_CA_BUNDLE=${join(tls.dir, "ca.pem")}`);
      } else view.line(`  export OTA=${server.url} TOKEN=${op.token}`);
      view.line(`  curl -s $OTA${ROUTES.stats} -H "Authorization: Bearer $TOKEN"`);
      view.line(`  curl -s $OTA${ROUTES.campaigns} -H "Authorization: Bearer $TOKEN"`);
      view.line(`  curl -s $OTA${campaignStatsPath(c2.campaign_id)} -H "Authorization: Bearer $TOKEN"`);
      view.line(`  curl -s $OTA${devicePath(ids[0]!)} -H "Authorization: Bearer $TOKEN"`);
      view.line(`  MQTT: ${server.mqttUrl ?? o.mqttUrl}   OpenAPI: ${server.url}/docs/openapi.json   server log: ${logFile}`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
    }
    return summary;
  } finally {
    await fleet?.stop();
    await server?.close();
    await new Promise<void>((r) => logStream.end(r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Polls the campaign, prints each new campaign event and redraws the live block until `done`. */
async function watchCampaign(op: Operator, id: string, fleet: Fleet, view: View, note: (s: string) => void, done: (c: CampaignStats) => boolean, deadline: number): Promise<CampaignStats> {
  const seen = new Set<string>();
  for (;;) {
    const c = await op.campaignStats(id);
    for (const e of [...c.events].reverse()) {
      const key = `${e.at}|${e.type}|${JSON.stringify(e.detail)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      note(`event ${e.type}${formatDetail(e.detail)}`);
    }
    view.live({ campaign: c, versions: fleet.versions(), phases: fleet.phases() });
    if (done(c)) return c;
    if (Date.now() > deadline) throw new Error(`timed out watching campaign ${id} (${c.status}; ${fmtCounts(fleet.versions())})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function formatDetail(d: Record<string, unknown>): string {
  const parts = Object.entries(d)
    .filter(([, v]) => v !== null && v !== undefined && v !== 0)
    .map(([k, v]) => `${k}=${typeof v === "string" ? (v.includes(" ") ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
  return parts.length ? ` ${parts.join(" ")}` : "";
}

/**
 * The bad image's mix seed, chosen so the story happens at any fleet size: in the first batch most boards
 * fail (above the threshold) and at least one takes it (so there is something to roll back).
 */
/** A seed whose first batch has a board failing its self-test, a crashing one and a healthy one. */
export function chooseMixSeed(stage1: string[], from: number): number {
  for (let s = from; s < from + 10_000; s++) {
    const picks = stage1.map((id) => pickBehaviour(BAD_MIX, unitHash(`image/${s}/1.2.0/${id}`)));
    const n = (b: string) => picks.filter((p) => p === b).length;
    if (n("fail-self-test") >= 1 && n("crash-after-confirm") >= 1 && n("healthy") >= 1) return s;
  }
  throw new Error("no seed gives a first batch with failing, crashing and healthy boards");
}

function summaryTable(s: DemoSummary, serverVersions: Record<string, number>): string[] {
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  const rows: string[][] = [
    ["devices per version", `${fmtCounts(prefixV(s.versions))}   (server's view: ${fmtCounts(prefixV(serverVersions))})`],
    ...s.campaigns.map((c) => [c.name, `${c.status}: ${c.completed} completed · ${c.failed} failed · ${c.rolled_back} rolled back · ${c.pending} pending`]),
    ["rollbacks", `${s.rollbacks.server} ordered by the server (auto-rollback) · ${s.rollbacks.device} by devices after a failed self-test`],
    ["bytes served", `${mib(s.bytesServed)} (${s.bytesServed} bytes) · ${mib(s.deltaBytesServed)} of it delta patches · deltas saved ${mib(s.deltaBytesSaved)}`],
    ["duration", `${s.durationS} s`],
  ];
  // At most SUMMARY_WIDTH columns: long values wrap at their " · " separators onto lines of their own.
  const w = Math.max(...rows.map((r) => r[0]!.length));
  const room = SUMMARY_WIDTH - w - 4;
  const lines = rows.flatMap(([label, value]) => wrap(value!, room).map((part, i) => ` ${(i === 0 ? label! : "").padEnd(w)} │ ${part}`));
  const line = "─".repeat(w + 2) + "┼" + "─".repeat(Math.min(room + 1, Math.max(...lines.map((l) => l.length - w - 3))));
  return [line, ...lines, line, s.ok ? "Demo complete: every device is back on v1.1.0." : "Demo did not go as planned."];
}

const SUMMARY_WIDTH = 80;

/** Greedy wrap of "a · b · c" at its separators (inside a part too long for a line, at spaces) into lines of at
 * most `room` characters. */
export function wrap(text: string, room: number): string[] {
  const pieces: { sep: string; word: string }[] = [];
  text.split(" · ").forEach((part, i) => {
    const words = part.length <= room ? [part] : part.split(" ");
    words.forEach((word, j) => pieces.push({ sep: j > 0 ? " " : i > 0 ? " · " : "", word }));
  });
  const out: string[] = [];
  let current = "";
  for (const { sep, word } of pieces) {
    if (current && (current + sep + word).length > room) {
      out.push(current);
      current = word;
    } else current = current ? current + sep + word : word;
  }
  if (current) out.push(current);
  return out;
}

function withoutCredentials(url: string): string {
  const u = new URL(url);
  u.username = "";
  u.password = "";
  return u.toString().replace(/\/$/, "");
}
