// A real Mosquitto 2 for tests: started on a free loopback port with a temporary config and a fresh dynamic-security
// file (`mosquitto_ctrl dynsec init`), no root and no service needed. Without mosquitto installed the suite skips
// with one line, except under CI=true where it must run.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import { freePort } from "../support/free-port";

const PLUGIN_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"];

function which(cmd: string): string | null {
  try {
    return execFileSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}

/** What is missing to run Mosquitto tests, or null. */
export function mosquittoMissing(): string | null {
  if (!which("mosquitto") && !existsSync("/usr/sbin/mosquitto")) return "mosquitto";
  if (!which("mosquitto_ctrl")) return "mosquitto_ctrl";
  if (!dynsecPlugin()) return "mosquitto_dynamic_security.so";
  return null;
}

function dynsecPlugin(): string | null {
  return PLUGIN_DIRS.map((d) => join(d, "mosquitto_dynamic_security.so")).find((p) => existsSync(p)) ?? null;
}

/** true: run the suite; false: skip it (after one line saying why). Throws under CI=true when it cannot run. */
export function mosquittoAvailable(suite: string): boolean {
  const missing = mosquittoMissing();
  if (!missing) return true;
  if (process.env.CI === "true") throw new Error(`${suite}: ${missing} is not installed, and CI=true runs every suite (apt-get install mosquitto)`);
  console.log(`skipped: install mosquitto (apt-get install mosquitto) to run ${suite} (${missing} not found)`);
  return false;
}

export interface Mosquitto {
  port: number;
  url: string;
  admin: { username: string; password: string };
  /** The dynamic-security file (edit it only while the broker is stopped: it rewrites the file on every change). */
  dynsecFile: string;
  /** The running broker's process id, or null. */
  pid(): number | null;
  /** Stops the broker (its dynsec file stays, as on a real restart). */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const c = connect(port, "127.0.0.1", () => (c.destroy(), r(true)));
      c.on("error", () => r(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`mosquitto did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startMosquitto(): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), "ota-mosquitto-"));
  const port = await freePort();
  const admin = { username: "ota-admin", password: `pw-${Math.random().toString(36).slice(2)}` };
  const dynsecFile = join(dir, "dynamic-security.json");
  execFileSync("mosquitto_ctrl", ["dynsec", "init", dynsecFile, admin.username, admin.password], { stdio: "ignore" });
  const config = join(dir, "mosquitto.conf");
  writeFileSync(config, [
    `listener ${port} 127.0.0.1`,
    "allow_anonymous false",
    "persistence false",
    "set_tcp_nodelay true",
    `user ${userInfo().username}`, // as root, mosquitto would switch to user mosquitto, who cannot read this directory
    `plugin ${dynsecPlugin()}`,
    `plugin_opt_config_file ${dynsecFile}`,
    `log_dest file ${join(dir, "mosquitto.log")}`,
    "",
  ].join("\n"));
  let child: ChildProcess | null = null;
  const m: Mosquitto = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    admin,
    dynsecFile,
    pid: () => (child && child.exitCode === null ? child.pid ?? null : null),
    async start() {
      const c = (child = spawn(which("mosquitto") ?? "/usr/sbin/mosquitto", ["-c", config], { stdio: "ignore" }));
      // Not left behind by a test worker that exits without its afterAll (a timed-out hook).
      const reap = () => c.kill("SIGKILL");
      process.once("exit", reap);
      c.once("exit", () => process.off("exit", reap));
      await waitForPort(port, 5000);
    },
    async stop() {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((r) => (c.once("exit", () => r()), c.kill("SIGTERM")));
    },
    async close() {
      await m.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await m.start();
  return m;
}
