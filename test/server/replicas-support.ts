// The PostgreSQL the replica tests share a database on. Temporary until test/support/test-database.ts is on main.
import pg from "pg";

/** Why the replica tests cannot run here (printed once), or null. */
export function skipUnlessPg(name: string): boolean {
  if (process.env.OTA_TEST_DB === "pg" && process.env.OTA_TEST_PG_URL) return false;
  console.log(`${name}: skipped, needs OTA_TEST_DB=pg and a PostgreSQL (OTA_TEST_PG_URL)`);
  return true;
}

let n = 0;

export async function replicaDatabase(): Promise<{ databaseUrl: string; dispose(): Promise<void> }> {
  const base = new URL(process.env.OTA_TEST_PG_URL!);
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
