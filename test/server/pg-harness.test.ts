// Proof that the PostgreSQL run is one: a harness server answers PostgreSQL-only SQL, each start gets a database of
// its own, a restart keeps it and close() drops it. Only meaningful under OTA_TEST_DB=pg (scripts/test-pg.mjs).
import pg from "pg";
import { afterAll, describe, expect, inject, it } from "vitest";
import { api, asAdmin, registerDevice, startHarness, type Harness } from "./harness";
import { pgMode } from "../support/test-database";

const databaseOf = (h: Harness) => (h.server.ctx.db.prepare("SELECT current_database() AS name").get() as { name: string }).name;

async function databaseExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: inject("otaTestPgUrl")! });
  await client.connect();
  try {
    return (await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

describe.skipIf(!pgMode)("test harness on PostgreSQL (skipped: runs only under OTA_TEST_DB=pg, npm run test:pg)", () => {
  const open: Harness[] = [];
  afterAll(async () => {
    for (const h of open) await h.close().catch(() => {});
  });

  it("each start runs on a fresh PostgreSQL database of its own, collation C like SQLite's ordering", async () => {
    const a = await startHarness();
    const b = await startHarness();
    open.push(a, b);
    const [nameA, nameB] = [databaseOf(a), databaseOf(b)];
    expect(nameA).toMatch(/^ota_\d+_\d+$/);
    expect(nameB).toMatch(/^ota_\d+_\d+$/);
    expect(nameB).not.toBe(nameA);
    const collation = a.server.ctx.db.prepare("SELECT datcollate AS c FROM pg_database WHERE datname = current_database()").get() as { c: string };
    expect(collation.c).toBe("C");
    await registerDevice(a, "only-on-a");
    expect((await api(a, "GET", "/api/v1/devices/only-on-a", asAdmin(a))).status).toBe(200);
    expect((await api(b, "GET", "/api/v1/devices/only-on-a", asAdmin(b))).status).toBe(404);
  });

  it("a restart keeps its database and data; close() drops the database", async () => {
    const h = await startHarness();
    const name = databaseOf(h);
    await registerDevice(h, "kept");
    await h.restart();
    expect(databaseOf(h)).toBe(name);
    expect((await api(h, "GET", "/api/v1/devices/kept", asAdmin(h))).status).toBe(200);
    expect(await databaseExists(name)).toBe(true);
    await h.close();
    expect(await databaseExists(name)).toBe(false);
  });
});
