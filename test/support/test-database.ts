// The one switch between the backends for tests: under OTA_TEST_DB=pg every server a test starts gets a fresh
// PostgreSQL database of its own (dropped by dispose()); otherwise nothing, and the server keeps SQLite in its data dir.
import { inject } from "vitest";
import { pgServerAt, type PgServer } from "./pg-cluster";

/** True in the PostgreSQL run (`OTA_TEST_DB=pg`, see scripts/test-pg.mjs). */
export const pgMode = process.env.OTA_TEST_DB === "pg";

export interface TestDatabase {
  /** For startOtaServer's `databaseUrl`; undefined: SQLite. */
  databaseUrl?: string;
  /** For `ota-server` child processes: every subcommand reads $OTA_DATABASE_URL (and it may carry a password). */
  env: NodeJS.ProcessEnv;
  /** Drops the database (after the server using it is closed). */
  dispose(): Promise<void>;
}

let server: PgServer | null = null;
const byDataDir = new Map<string, TestDatabase>();
const live = new Set<TestDatabase>();

function pgServer(): PgServer {
  if (server) return server;
  const base = inject("otaTestPgUrl");
  if (!base) throw new Error("OTA_TEST_DB=pg but no PostgreSQL was provided: run through vitest.config.ts's globalSetup");
  return (server = pgServerAt(base));
}

/** A database for a server. The same `dataDir` gets the same database until it is disposed, as a restart on a data
 * dir finds its SQLite file again. */
export async function testDatabase(dataDir?: string): Promise<TestDatabase> {
  const known = dataDir ? byDataDir.get(dataDir) : undefined;
  if (known) return known;
  if (!pgMode) {
    const { OTA_DATABASE_URL: _ignored, ...env } = process.env; // the SQLite run stays SQLite whatever the shell has
    return { env, dispose: async () => {} };
  }
  const pgs = pgServer();
  const url = await pgs.createDatabase();
  const db: TestDatabase = {
    databaseUrl: url,
    env: { ...process.env, OTA_DATABASE_URL: url },
    async dispose() {
      if (dataDir) byDataDir.delete(dataDir);
      live.delete(db);
      await pgs.dropDatabase(url);
    },
  };
  if (dataDir) byDataDir.set(dataDir, db);
  live.add(db);
  return db;
}

/** Drops every database this test file still holds (for files whose servers are `ota-server` processes). */
export async function disposeTestDatabases(): Promise<void> {
  for (const db of [...live]) await db.dispose();
}
