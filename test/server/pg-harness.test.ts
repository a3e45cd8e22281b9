// Proof that the PostgreSQL run is one: a harness server answers PostgreSQL-only SQL, each start gets a database of
// its own, a restart keeps it and close() drops it. Only meaningful under OTA_TEST_DB=pg (scripts/test-pg.mjs).
import pg from "pg";
import { afterAll, describe, expect, inject, it } from "vitest";
import { startHarness, type Harness } from "./harness";
import { pgMode } from "../support/test-database";

const databaseOf = (h: Harness) => (h.server.ctx.db.prepare("SELECT current_database() AS name").get() as { name: string }).name;
// Rows written straight through the server's own connection, so the proof needs none of the routes' SQL.
const mark = (h: Harness, note: string) => {
  h.server.ctx.db.exec("CREATE TABLE IF NOT EXISTS harness_probe (note TEXT)");
  h.server.ctx.db.prepare("INSERT INTO harness_probe (note) VALUES (?)").run(note);
};
const marks = (h: Harness) => {
  const exists = h.server.ctx.db.prepare("SELECT to_regclass('harness_probe') AS t").get() as { t: string | null };
  return exists.t ? (h.server.ctx.db.prepare("SELECT note FROM harness_probe").all() as { note: string }[]).map((r) => r.note) : [];
};

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
    expect([a.server.ctx.db.dialect, b.server.ctx.db.dialect]).toEqual(["pg", "pg"]);
    const [nameA, nameB] = [databaseOf(a), databaseOf(b)];
    expect(nameA).toMatch(/^ota_\d+_\d+$/);
    expect(nameB).toMatch(/^ota_\d+_\d+$/);
    expect(nameB).not.toBe(nameA);
    const collation = a.server.ctx.db.prepare("SELECT datcollate AS c FROM pg_database WHERE datname = current_database()").get() as { c: string };
    expect(collation.c).toBe("C");
    mark(a, "only-on-a");
    expect([marks(a), marks(b)]).toEqual([["only-on-a"], []]);
  });

  it("a restart keeps its database and data; close() drops the database", async () => {
    const h = await startHarness();
    const name = databaseOf(h);
    mark(h, "kept");
    await h.restart();
    expect(databaseOf(h)).toBe(name);
    expect(marks(h)).toEqual(["kept"]);
    expect(await databaseExists(name)).toBe(true);
    await h.close();
    expect(await databaseExists(name)).toBe(false);
  });
});
