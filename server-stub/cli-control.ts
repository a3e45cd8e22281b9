// `ota-server wait` and `ota-server stop`: readiness and shutdown for scripts and README blocks,
// where `npx ota-server &` makes $! the pid of npx, not of the server.
import { existsSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { isRunning, readPid } from "./pid-file";
import { CliError, type CliValues, dataDirOf, int, pidFileOf } from "./cli-usage";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitCommand(values: CliValues): Promise<number> {
  const base = (values.url ?? `http://localhost:${int(values.port ?? process.env.OTA_PORT, "port", 8221)}`).replace(/\/+$/, "");
  const deadline = Date.now() + int(values.timeout, "timeout", 30) * 1000;
  const caFile = values.cacert ?? join(dataDirOf(values), "tls", "ca.pem");
  let last = "";
  while (Date.now() < deadline) {
    try {
      // A server on its first start is still generating that CA: wait for the file too.
      const ca = !base.startsWith("https:") ? undefined : existsSync(caFile) ? readFileSync(caFile, "utf8") : values.cacert ? null : undefined;
      if (ca === null) {
        last = `no ${caFile} yet`;
        await sleep(200);
        continue;
      }
      const status = base.startsWith("https:") ? await httpsStatus(`${base}/health`, ca) : (await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) })).status;
      if (status >= 200 && status < 300) return 0;
      last = `HTTP ${status}`;
    } catch (e) {
      last = ((e as Error).cause as Error | undefined)?.message ?? (e as Error).message;
    }
    await sleep(200);
  }
  throw new CliError(`${base} not ready after ${values.timeout ?? 30} s (${last})`, null, 1, "is the server started? its log says why it is not");
}

/** GET over https trusting `ca`, or the system's trust store without one (Node 20's fetch cannot be given a CA). */
function httpsStatus(url: string, ca: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...(ca ? { ca } : {}), timeout: 2000 }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

export async function stopCommand(values: CliValues): Promise<number> {
  const pidFile = pidFileOf(values);
  const pid = readPid(pidFile);
  if (pid === null || !isRunning(pid)) {
    rmSync(pidFile, { force: true });
    console.log(`ota-server: not running (${pidFile})`);
    return 0;
  }
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + int(values.timeout, "timeout", 10) * 1000;
  while (isRunning(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      rmSync(pidFile, { force: true });
      throw new CliError(`pid ${pid} did not stop in time; killed`, null, 1, "its log says what it was doing");
    }
    await sleep(100);
  }
  console.log(`ota-server: stopped (pid ${pid})`);
  return 0;
}
