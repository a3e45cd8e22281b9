// A throwaway PostgreSQL for tests and benches: its own initdb cluster on a free loopback port (no service, no
// password, fsync off), or the server named by $OTA_TEST_PG_URL. Each caller gets fresh databases on it.
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./free-port";

/** DROP DATABASE … WITH (FORCE) came in 13. */
const MIN_MAJOR = 13;

export interface PgServer {
  /** The URL of database `db` on this server. */
  url(db: string): string;
  /** A new empty database (UTF8, collation C like the test cluster) and its URL. */
  createDatabase(): Promise<string>;
  /** Drops the database of `url`, closing the connections still open to it. */
  dropDatabase(url: string): Promise<void>;
  /** Stops the cluster and deletes its files (nothing for an external server). */
  stop(): Promise<void>;
}

/** The directory of initdb and pg_ctl (13 or newer), or null. */
export function pgBinDir(): string | null {
  const candidates: string[] = [];
  try {
    candidates.push(execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
  } catch {
    /* no pg_config: Debian's server package lives under /usr/lib/postgresql/<major>/bin */
  }
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    const majors = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...majors.map((v) => join(debian, v, "bin")));
  }
  return candidates.find((dir) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl")) && majorOf(dir) >= MIN_MAJOR) ?? null;
}

function majorOf(binDir: string): number {
  try {
    const out = execFileSync(join(binDir, "pg_ctl"), ["--version"], { encoding: "utf8" });
    return Number(/(\d+)/.exec(out)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Why no PostgreSQL can be had for tests, or null. */
export function pgMissing(): string | null {
  if (process.env.OTA_TEST_PG_URL) return null;
  return pgBinDir() ? null : `PostgreSQL ${MIN_MAJOR}+ not found (Debian: apt-get install postgresql; or set OTA_TEST_PG_URL)`;
}

/** A server for test databases: $OTA_TEST_PG_URL if set, else a cluster of our own. */
export async function startPgCluster(): Promise<PgServer> {
  const external = process.env.OTA_TEST_PG_URL;
  return external ? pgServerAt(external) : startOwnCluster();
}

let created = 0;

/** Test databases on the server at `baseUrl` (any database on it: the admin connection goes to `postgres`). */
export function pgServerAt(baseUrl: string, stop: () => Promise<void> = async () => {}): PgServer {
  const url = (db: string) => {
    const u = new URL(baseUrl);
    u.pathname = `/${db}`;
    return u.toString();
  };
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: url("postgres") });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return {
    url,
    async createDatabase() {
      // pid + counter: one process per test file (pool "forks"), so names never collide.
      const name = `ota_${process.pid}_${++created}`;
      await admin(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
      return url(name);
    },
    async dropDatabase(dbUrl) {
      const name = decodeURIComponent(new URL(dbUrl).pathname.slice(1));
      if (!/^ota_\d+_\d+$/.test(name)) throw new Error(`refusing to drop ${name}: not a test database`);
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
    stop,
  };
}

async function startOwnCluster(): Promise<PgServer> {
  const bin = pgBinDir();
  if (!bin) throw new Error(pgMissing()!);
  const dir = mkdtempSync(join(tmpdir(), "ota-pg-"));
  const data = join(dir, "data");
  // initdb refuses to run as root: the cluster then belongs to the postgres user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, uidOf("postgres"), gidOf("postgres"));
  const run = (cmd: string, args: string[]) =>
    asRoot ? execFileSync("runuser", ["-u", "postgres", "--", join(bin, cmd), ...args], { stdio: "pipe" }) : execFileSync(join(bin, cmd), args, { stdio: "pipe" });
  const port = await freePort();
  const log = join(dir, "server.log");
  try {
    run("initdb", ["-D", data, "--no-locale", "-E", "UTF8", "-U", "ota", "--auth=trust", "--no-sync"]);
    const settings = ["fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300", "listen_addresses=127.0.0.1"];
    const opts = [`-p ${port}`, `-k ${dir}`, ...settings.map((s) => `-c ${s}`)].join(" ");
    run("pg_ctl", ["-D", data, "-l", log, "-w", "-t", "30", "-o", opts, "start"]);
  } catch (e) {
    const detail = existsSync(log) ? readFileSync(log, "utf8").split("\n").slice(-5).join("\n") : String((e as { stderr?: Buffer }).stderr ?? e);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start a PostgreSQL cluster with ${bin}: ${detail}`);
  }
  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    process.off("exit", stopNow);
    try {
      run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  // pg_ctl detaches the server: a run that exits without its teardown (Ctrl-C, a crash) must not leave it behind.
  process.on("exit", stopNow);
  return pgServerAt(`postgres://ota@127.0.0.1:${port}/postgres`, async () => stopNow());
}

function uidOf(user: string): number {
  return Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim());
}

function gidOf(user: string): number {
  return Number(execFileSync("id", ["-g", user], { encoding: "utf8" }).trim());
}
