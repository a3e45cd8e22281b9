// The database surface the server uses: the part of better-sqlite3's API it calls, which the PostgreSQL adapter
// offers too, so services run unchanged on either. Synchronous by design: a transaction is one uninterrupted run of
// JavaScript, so no request can interleave with another's bookkeeping (see pg.ts for what that costs on PostgreSQL).

export interface RunResult {
  changes: number;
}

export interface Statement {
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): RunResult;
}

export type Dialect = "sqlite" | "pg";

export interface Db {
  readonly dialect: Dialect;
  /** false once closed: deferred work (notifications, webhook delivery) checks it before touching the database. */
  readonly open: boolean;
  /** Positional `?` parameters only; the SQL must be portable (server-stub/SQL-PORTABILITY.md). */
  prepare(sql: string): Statement;
  /** Statements without parameters (DDL), several separated by `;`. */
  exec(sql: string): void;
  /** Wraps fn in BEGIN/COMMIT (ROLLBACK if it throws); nested calls become savepoints. fn must not return a Promise. */
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  close(): void;
}
