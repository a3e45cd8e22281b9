// An `ota-server` in a child process for the benches, so its memory and CPU are its own: started on free loopback
// ports, ready once GET /health answers, stopped with SIGTERM (SIGKILL after 5 s).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ROUTES } from "../device/protocol/paths";
import { freePort } from "../test/support/free-port";
import { cpuSeconds, peakRssSampler } from "./proc-stats";

export { freePort };

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export interface ServerChildOptions {
  /** REST port (default: a free one). */
  port?: number;
  /** Default: a fresh temporary directory, removed by stop(). A given one is left alone. */
  dataDir?: string;
  /** Arguments after --host/--port/--data-dir/--log-level (default: the embedded broker on a free port). */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** A directory for a V8 CPU profile of the child (--cpu-prof), written when it exits. */
  cpuProfDir?: string;
}

export interface ServerChild {
  url: string;
  /** The embedded broker's URL; null when `args` were given (the caller chose the broker). */
  mqttUrl: string | null;
  dataDir: string;
  child: ChildProcess;
  /** Peak resident set of the server process so far (VmHWM), MiB. */
  peakRssMiB(): number;
  /** CPU seconds (user + system) the server process used so far; NaN where /proc is missing. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

export async function startServerChild(o: ServerChildOptions = {}): Promise<ServerChild> {
  const port = o.port ?? (await freePort());
  const ownDir = !o.dataDir;
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), "ota-bench-server-"));
  let mqttUrl: string | null = null;
  let args = o.args;
  if (!args) {
    const [mqttPort, authPort] = [await freePort(), await freePort()];
    mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    args = ["--mqtt-port", String(mqttPort), "--dev-tokens", "--auth-port", String(authPort)];
  }
  const prof = o.cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", o.cpuProfDir] : [];
  const child = spawn(process.execPath, [...prof, join(root, "bin/ota-server.js"), "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir, "--log-level", "warn", ...args], {
    stdio: ["ignore", "ignore", "inherit"],
    env: o.env ?? process.env,
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(url + ROUTES.health)).ok) break;
    } catch {
      /* not up yet */
    }
    if (i > 400 || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`the server on port ${port} did not start (exit code ${child.exitCode})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const rss = peakRssSampler(child.pid!);
  return {
    url, mqttUrl, dataDir, child,
    peakRssMiB: () => rss.peakMiB(),
    cpuSeconds: () => cpuSeconds(child.pid!),
    async stop() {
      rss.stop();
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await gone;
        clearTimeout(t);
      }
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
