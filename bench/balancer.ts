// A round-robin TCP load balancer for the scale bench: each accepted connection goes to the next backend in turn
// and is piped both ways (HTTP keep-alive connections stick to the backend they were given, as with a layer-4
// balancer). Run as its own process (`node bench/balancer.ts PORT…` prints `listening PORT`) so its CPU is its own.
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Balancer {
  port: number;
  /** Connections handed to each backend, in the order of `backends`. */
  counts: number[];
  close(): Promise<void>;
}

export async function startBalancer(backends: readonly number[], host = "127.0.0.1"): Promise<Balancer> {
  if (backends.length === 0) throw new Error("a balancer needs at least one backend port");
  const counts = backends.map(() => 0);
  const open = new Set<net.Socket>();
  let next = 0;
  const server = net.createServer((client) => {
    const i = next++ % backends.length;
    counts[i]!++;
    const upstream = net.connect(backends[i]!, host);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      open.add(s);
      s.once("close", () => open.delete(s));
    }
    // A backend that goes away closes its clients' connections (they reconnect, and get the next backend).
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    port: (server.address() as net.AddressInfo).port,
    counts,
    async close() {
      for (const s of open) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** The balancer in a child process of this one; `cpuPid` is what to read /proc from. */
export async function spawnBalancer(backends: readonly number[]): Promise<{ port: number; child: ChildProcess; stop(): Promise<number[]> }> {
  // tsx compiles it (as for `npm run bench:scale`), resolved from the project root whoever the caller is.
  const here = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ["--import", "tsx", here, ...backends.map(String)], { stdio: ["ignore", "pipe", "inherit"], cwd: join(dirname(here), "..") });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    lines.once("line", (l) => resolve(Number(/^listening (\d+)$/.exec(l)?.[1] ?? NaN)));
    child.once("exit", (code) => reject(new Error(`the balancer exited with ${code}`)));
  });
  if (!Number.isInteger(port)) throw new Error("the balancer did not say its port");
  let counts: number[] = [];
  lines.on("line", (l) => {
    const m = /^connections ([\d,]+)$/.exec(l);
    if (m) counts = m[1]!.split(",").map(Number);
  });
  return {
    port, child,
    /** Stops it; resolves with the connections each backend was given. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await gone;
      }
      return counts;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const b = await startBalancer(process.argv.slice(2).map(Number));
  process.stdout.write(`listening ${b.port}\n`);
  process.on("SIGTERM", () => {
    process.stdout.write(`connections ${b.counts.join(",")}\n`, () => void b.close().then(() => process.exit(0)));
  });
}
