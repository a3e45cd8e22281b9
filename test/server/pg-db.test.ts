// The PostgreSQL adapter behind the synchronous Db surface (server-stub/db/pg.ts), on a real server: runs in the
// PostgreSQL pass of the suite (OTA_TEST_DB=pg, scripts/test-pg.mjs) and skips with its reason otherwise.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Db } from "../../server-stub/db";
import { PgError } from "../../server-stub/db/pg";
import { pgMode, testDatabase, type TestDatabase } from "../support/test-database";

describe.skipIf(!pgMode)("the PostgreSQL adapter (OTA_TEST_DB=pg)", () => {
  let tdb: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    tdb = await testDatabase();
    db = openDatabase({ sqlitePath: "/nonexistent/ota.sqlite", databaseUrl: tdb.databaseUrl });
    db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT NOT NULL)");
  });
  afterAll(async () => {
    db?.close();
    await tdb?.dispose();
  });

  it("answers like SQLite: numbers for int8 and numeric, 0/1 for booleans, undefined for no row", () => {
    expect(db.dialect).toBe("pg");
    db.prepare("INSERT INTO t(k, v) VALUES (?, ?)").run("a", 1796067092693);
    expect(db.prepare("SELECT v, COUNT(*) AS n, AVG(v) AS mean, v > 0 AS positive FROM t GROUP BY v").get()).toEqual({ v: 1796067092693, n: 1, mean: 1796067092693, positive: 1 });
    expect(db.prepare("SELECT v FROM t WHERE k = ?").get("nobody")).toBeUndefined();
    expect(db.prepare("UPDATE t SET v = v + 1 WHERE k = ?").run("a")).toEqual({ changes: 1 });
  });

  it("commits a transaction, rolls one back on a throw, and nests as savepoints", () => {
    db.transaction(() => db.prepare("INSERT INTO t(k, v) VALUES ('b', 2)").run())();
    expect(() => db.transaction(() => {
      db.prepare("INSERT INTO t(k, v) VALUES ('c', 3)").run();
      throw new Error("no");
    })()).toThrow("no");
    db.transaction(() => {
      db.prepare("INSERT INTO t(k, v) VALUES ('d', 4)").run();
      expect(() => db.transaction(() => {
        db.prepare("INSERT INTO t(k, v) VALUES ('e', 5)").run();
        throw new Error("inner");
      })()).toThrow("inner");
    })();
    const keys = (db.prepare("SELECT k FROM t ORDER BY k").all() as { k: string }[]).map((r) => r.k);
    expect(keys).toEqual(["a", "b", "d"]);
  });

  it("refuses a transaction function that returns a promise, and commits nothing of it", () => {
    expect(() => db.transaction(() => {
      db.prepare("INSERT INTO t(k, v) VALUES ('p', 6)").run();
      return Promise.resolve();
    })()).toThrow(/cannot return a promise/);
    expect(db.prepare("SELECT k FROM t WHERE k = 'p'").get()).toBeUndefined();
  });

  it("gives PostgreSQL's SQLSTATE with its errors", () => {
    let error: unknown;
    try {
      db.prepare("INSERT INTO t(k, v) VALUES ('a', 7)").run();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PgError);
    expect((error as PgError).code).toBe("23505");
  });

  it("fails the rest of a transaction whose connection was cut, and reconnects for the next statement", () => {
    // A second connection ends ours mid-transaction, as a restart of PostgreSQL or a dropped link would.
    const other = openDatabase({ sqlitePath: "/nonexistent/ota.sqlite", databaseUrl: tdb.databaseUrl });
    try {
      const errors: string[] = [];
      expect(() => db.transaction(() => {
        db.prepare("INSERT INTO t(k, v) VALUES ('x', 8)").run();
        const pid = (db.prepare("SELECT pg_backend_pid() AS pid").get() as { pid: number }).pid;
        other.prepare("SELECT pg_terminate_backend(?)").get(pid);
        for (const k of ["y", "z"]) {
          try {
            db.prepare("INSERT INTO t(k, v) VALUES (?, 9)").run(k);
          } catch (e) {
            errors.push((e as PgError).code ?? (e as Error).message);
          }
        }
        throw new Error("done");
      })()).toThrow("done");
      // Neither statement ran on a new connection outside the transaction: the second is refused as such.
      expect(errors).toHaveLength(2);
      expect(errors[1]).toBe("08006");
      expect(db.prepare("SELECT k FROM t WHERE k IN ('x', 'y', 'z')").all()).toEqual([]);
      expect(db.prepare("SELECT COUNT(*) AS n FROM t").get()).toEqual({ n: 3 });
    } finally {
      other.close();
    }
  });
});
