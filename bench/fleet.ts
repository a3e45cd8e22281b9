// npm run bench:fleet — fleet_1000_campaign_s: 1,000 simulated devices (one process) through a staged campaign of
// a 256 KiB image against the server stub in a child process (so its peak RSS is its own), and
// server_download_vs_nginx: the stub's firmware download throughput against nginx serving the same file under the
// same concurrent load (skipped when nginx is not installed).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Operator } from "../demo/operator";
import { buildAppImage } from "../esp-image/app-image";
import { Fleet } from "../host-sim/fleet/fleet";
import type { Figure } from "./run";
import { printTable, record } from "./run";
import { firmwareDownloadPath } from "../device/protocol/paths";
import { freePort, startServerChild } from "./server-child";

const MODEL = "ESP32-DEVKIT";
const MiB = 1024 * 1024;

export async function fleetCampaign(figures: Figure[], n = Number(process.env.FLEET_DEVICES ?? 1000), log: (s: string) => void = console.log) {
  const server = await startServerChild({ cpuProfDir: process.env.FLEET_SERVER_PROF });
  let fleet: Fleet | null = null;
  try {
    const op = await Operator.login(server.url);
    const t0 = performance.now();
    fleet = await Fleet.start({
      devices: n, serverUrl: server.url, token: op.token, mqttUrl: server.mqttUrl!, model: MODEL, seed: 1,
      factoryImage: buildAppImage({ version: "1.0.0", size: 64 * 1024 }), pollIntervalMs: 10 * 60_000,
      ...(process.env.FLEET_LOG ? { log: (l: string) => log(`${((performance.now() - t0) / 1000).toFixed(2)} ${l}`) } : {}),
    });
    await fleet.waitConnected(120_000);
    const setupS = (performance.now() - t0) / 1000;
    log(`fleet: ${n} devices registered, booted and on MQTT in ${setupS.toFixed(1)} s; server RSS ${server.peakRssMiB().toFixed(0)} MiB`);
    const fw = await op.upload({ version: "1.1.0", device_model: MODEL, name: "bench 1.1.0" }, buildAppImage({ version: "1.1.0", size: 256 * 1024 }));
    const batch = Math.ceil(n / 10);
    const c = await op.createCampaign({
      name: "bench staged", firmware_id: fw.firmware_id, deployment_strategy: "staged", batch_size: batch,
      target_devices: fleet.devices.map((d) => d.id), failure_threshold_percent: 10, timeout_minutes: 30,
    });
    const t1 = performance.now();
    const cpu0 = { server: server.cpuSeconds(), sim: process.cpuUsage() };
    await op.start(c.campaign_id);
    let last = "";
    let stats;
    for (;;) {
      stats = await op.campaignStats(c.campaign_id);
      const line = `${stats.status}: stage ${stats.stages.filter((s) => s.state === "done").length}/${stats.stages.length}, completed ${stats.completed_devices}, failed ${stats.failed_devices}`;
      if (line !== last) log(`  ${((performance.now() - t1) / 1000).toFixed(1)} s ${line}`);
      last = line;
      if (["completed", "failed", "paused", "cancelled"].includes(stats.status)) break;
      if (performance.now() - t1 > 600_000) throw new Error("campaign did not finish within 10 minutes");
      await new Promise((r) => setTimeout(r, 250));
    }
    const campaignS = (performance.now() - t1) / 1000;
    const versions = fleet.versions();
    const rss = server.peakRssMiB();
    const serverCpu = server.cpuSeconds() - cpu0.server;
    const simCpu = (() => {
      const u = process.cpuUsage(cpu0.sim);
      return (u.user + u.system) / 1e6;
    })();
    log(`CPU during the campaign: server ${serverCpu.toFixed(1)} s, simulator ${simCpu.toFixed(1)} s (wall ${campaignS.toFixed(1)} s, 2 cores = ${(2 * campaignS).toFixed(0)} CPU-s)`);
    const ok = stats.status === "completed" && versions["1.1.0"] === n;
    log(`campaign ${stats.status} in ${campaignS.toFixed(1)} s; devices ${JSON.stringify(versions)}; downloaded ${(fleet.downloadedBytes() / MiB).toFixed(0)} MiB`);
    figures.push({ name: `fleet_${n}_campaign_s`, value: round(campaignS, 1), unit: "s", target: "<= 60", met: ok && campaignS <= 60, note: `staged, ${n / batch} batches of ${batch}, 256 KiB image${ok ? "" : `; NOT all updated: ${stats.status} ${JSON.stringify(versions)}`}` });
    figures.push({ name: `fleet_${n}_server_peak_rss_mb`, value: round(rss, 0), unit: "MiB", target: "<= 300", met: rss <= 300, note: "VmHWM of the server process (HTTP + embedded MQTT broker + SQLite)" });
    figures.push({ name: `fleet_${n}_campaign_server_cpu_s`, value: round(serverCpu, 1), unit: "s", note: "CPU time of the server process during the campaign" });
    figures.push({ name: `fleet_${n}_campaign_sim_cpu_s`, value: round(simCpu, 1), unit: "s", note: "CPU time of the simulator process during the campaign" });
    figures.push({ name: `fleet_${n}_setup_s`, value: round(setupS, 1), unit: "s", note: "register, factory-flash, boot and connect every device" });
    figures.push({ name: `fleet_${n}_sim_process_peak_rss_mb`, value: round(process.resourceUsage().maxRSS / 1024, 0), unit: "MiB", note: "the process running all devices (sparse flashes)" });
  } finally {
    await fleet?.stop();
    await server.stop();
  }
}

// ---- server_download_vs_nginx ----

function hasNginx(): string | null {
  for (const p of ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx", "/usr/local/bin/nginx"]) if (existsSync(p)) return p;
  try {
    return execFileSync("sh", ["-c", "command -v nginx"]).toString().trim() || null;
  } catch {
    return null;
  }
}

/** `total` GETs of `url`, `concurrency` at a time over keep-alive connections; MiB/s of body received. */
async function load(url: string, headers: Record<string, string>, concurrency: number, total: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let bytes = 0;
  let next = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      http.get(url, { agent, headers }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode}`));
        res.on("data", (c: Buffer) => (bytes += c.length));
        res.on("end", resolve);
        res.on("error", reject);
      }).on("error", reject);
    });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < total) await one();
  }));
  const s = (performance.now() - t0) / 1000;
  agent.destroy();
  return bytes / MiB / s;
}

export async function downloadVsNginx(figures: Figure[], log: (s: string) => void = console.log) {
  const nginx = hasNginx();
  if (!nginx) {
    log("server_download_vs_nginx: skipped — nginx is not installed (apt-get install nginx to measure it)");
    return;
  }
  const server = await startServerChild();
  const dir = mkdtempSync(join(tmpdir(), "ota-bench-nginx-"));
  let ng: ChildProcess | null = null;
  try {
    const op = await Operator.login(server.url);
    const image = buildAppImage({ version: "2.0.0", size: 4 * MiB - 4096 });
    const fw = await op.upload({ version: "2.0.0", device_model: MODEL, name: "bench 2.0.0" }, image);
    writeFileSync(join(dir, "fw.bin"), image, { mode: 0o644 });
    chmodSync(dir, 0o755); // nginx's workers drop to an unprivileged user when started as root
    const port = await freePort();
    mkdirSync(join(dir, "logs"));
    writeFileSync(join(dir, "nginx.conf"), `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${dir}/tmp_body; proxy_temp_path ${dir}/tmp_proxy; fastcgi_temp_path ${dir}/tmp_fcgi;
  uwsgi_temp_path ${dir}/tmp_uwsgi; scgi_temp_path ${dir}/tmp_scgi;
  server { listen 127.0.0.1:${port}; root ${dir}; }
}
`);
    ng = spawn(nginx, ["-c", join(dir, "nginx.conf"), "-p", dir], { stdio: ["ignore", "ignore", "inherit"] });
    const nginxUrl = `http://127.0.0.1:${port}/fw.bin`;
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(nginxUrl, { method: "HEAD" })).ok) break;
      } catch {
        /* starting */
      }
      if (i > 100) throw new Error("nginx did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
    const serverUrl = server.url + firmwareDownloadPath(fw.firmware_id);
    const auth = { authorization: `Bearer ${op.token}` };
    const concurrency = 32;
    const total = 256; // 1 GiB in 4 MiB files
    await load(serverUrl, auth, concurrency, 32); // warm-up both
    await load(nginxUrl, {}, concurrency, 32);
    const stub = await load(serverUrl, auth, concurrency, total);
    const ngx = await load(nginxUrl, {}, concurrency, total);
    log(`downloads of a 4 MiB image, ${concurrency} concurrent, ${total} in all: server stub ${stub.toFixed(0)} MiB/s, nginx ${ngx.toFixed(0)} MiB/s`);
    figures.push({ name: "server_download_mib_per_s", value: round(stub, 0), unit: "MiB/s", note: `${concurrency} concurrent keep-alive clients, 4 MiB image, auth + SQLite lookup per request` });
    figures.push({ name: "nginx_download_mib_per_s", value: round(ngx, 0), unit: "MiB/s", note: "nginx 1 worker, sendfile, same file and load" });
    figures.push({ name: "server_download_vs_nginx", value: round(stub / ngx, 3), unit: "ratio", note: "server stub / nginx throughput (same machine, client in a third process)" });
  } finally {
    if (ng) {
      const gone = new Promise((r) => ng!.once("exit", r));
      ng.kill("SIGQUIT");
      await gone;
    }
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function round(v: number, digits: number) {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures: Figure[] = [];
  // FLEET_DEVICES=0 skips the fleet; BENCH_NGINX=0 skips the download comparison.
  if (Number(process.env.FLEET_DEVICES ?? 1000) > 0) await fleetCampaign(figures);
  if (process.env.BENCH_NGINX !== "0") await downloadVsNginx(figures);
  printTable(figures);
  record(figures);
  process.exit(0);
}
