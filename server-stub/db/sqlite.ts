// The embedded default: better-sqlite3, whose API is the Db surface itself.
import type Database from "better-sqlite3";
import type { Db, Statement } from "./types";

export class SqliteDb implements Db {
  readonly dialect = "sqlite" as const;
  constructor(readonly raw: Database.Database) {}

  get open(): boolean {
    return this.raw.open;
  }

  prepare(sql: string): Statement {
    return this.raw.prepare(sql);
  }

  exec(sql: string): void {
    this.raw.exec(sql);
  }

  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return this.raw.transaction(fn) as unknown as (...args: A) => R;
  }

  close(): void {
    this.raw.close();
  }
}
