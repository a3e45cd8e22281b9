// The PostgreSQL database two replicas share (testDatabase gives each server its own, which is not what they need).
import pg from "pg";
import { inject } from "vitest";

/** $OTA_TEST_PG_URL, else the run's own PostgreSQL (vitest globalSetup, test/support/pg-global-setup.ts). */
function baseUrl(): string | null {
  if (process.env.OTA_TEST_PG_URL) return process.env.OTA_TEST_PG_URL;
  try {
    return ((inject as (key: string) => unknown)("otaTestPgUrl") as string | null | undefined) ?? null;
  } catch {
    return null;
  }
}

/** Why the replica tests cannot run here (printed once), or null. */
export function skipUnlessPg(name: string): boolean {
  if (process.env.OTA_TEST_DB === "pg" && baseUrl()) return false;
  if (process.env.OTA_TEST_DB === "pg" && process.env.CI === "true") throw new Error(`${name}: OTA_TEST_DB=pg under CI but no PostgreSQL was provided`);
  console.log(`${name}: skipped, needs OTA_TEST_DB=pg (a PostgreSQL)`);
  return true;
}

let n = 0;

export async function replicaDatabase(): Promise<{ databaseUrl: string; dispose(): Promise<void> }> {
  const base = new URL(baseUrl()!);
  const name = `ota_replicas_${process.pid}_${++n}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: base.toString() });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return { databaseUrl: url.toString(), dispose: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
