// PostgreSQL behind the synchronous Db surface: one connection per server process, driven by a worker thread while
// the main thread waits (Atomics.wait), as synckit does. Why synchronous: every service keeps the property SQLite
// gave it, that a transaction runs start to end without another request interleaving in this process, and the same
// code and tests run on both backends. The cost: the event loop waits one round trip per statement (measured by
// `npm run bench:scale`); throughput grows with replicas, which is what this backend is for.
import { MessageChannel, receiveMessageOnPort, Worker } from "node:worker_threads";
import type { Db, RunResult, Statement } from "./types";

const ANSWER_TIMEOUT_MS = 40_000; // above the worker's statement_timeout (30 s)

interface Answer {
  seq: number;
  rows?: Record<string, unknown>[];
  changes?: number;
  gen?: number;
  error?: { message: string; code?: string; detail?: string; constraint?: string };
}

/** A PostgreSQL error as the caller sees it: `code` is the SQLSTATE (23505 unique violation, 40P01 deadlock…). */
export class PgError extends Error {
  constructor(message: string, readonly code?: string, readonly detail?: string, readonly constraint?: string) {
    super(message);
  }
}
PgError.prototype.name = "PgError";

/** `?` placeholders to `$1…$n`, leaving quoted literals, quoted identifiers and comments alone. */
export function numberPlaceholders(sql: string): string {
  let out = "";
  let n = 0;
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"') {
      const end = sql.indexOf(ch, i + 1);
      const stop = end < 0 ? sql.length : end;
      out += sql.slice(i, stop + 1);
      i = stop;
    } else if (ch === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      const stop = end < 0 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else out += ch === "?" ? `$${++n}` : ch;
  }
  return out;
}

export class PgDb implements Db {
  readonly dialect = "pg" as const;
  private readonly worker: Worker;
  private readonly port;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  private readonly texts = new Map<string, string>();
  private seq = 0;
  private closed = false;
  /** Connection generation the open transaction began on; undefined outside one. */
  private txGen: number | undefined;
  private depth = 0;

  constructor(readonly url: string, applicationName = "ota-server") {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(new URL("./pg-worker.mjs", import.meta.url), {
      workerData: { port: port2, flag: this.flag, url, applicationName },
      transferList: [port2],
    });
    this.worker.unref();
    this.call({ op: "gen" }); // connects now, so a wrong URL fails the start, not the first request
  }

  get open(): boolean {
    return !this.closed;
  }

  prepare(sql: string): Statement {
    let text = this.texts.get(sql);
    if (text === undefined) {
      text = numberPlaceholders(sql);
      if (this.texts.size < 4000) this.texts.set(sql, text);
    }
    const query = (params: unknown[]) => this.call({ op: "query", sql: text, params: params.map(toPg) });
    return {
      get: (...params) => query(params).rows![0],
      all: (...params) => query(params).rows!,
      run: (...params): RunResult => ({ changes: query(params).changes ?? 0 }),
    };
  }

  exec(sql: string): void {
    this.call({ op: "exec", sql });
  }

  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return (...args: A): R => {
      const savepoint = this.depth > 0 ? `sp${this.depth}` : null;
      if (savepoint) this.exec(`SAVEPOINT ${savepoint}`);
      else {
        this.exec("BEGIN");
        this.txGen = this.call({ op: "gen" }).gen;
      }
      this.depth++;
      try {
        const result = fn(...args);
        if (result instanceof Promise) throw new TypeError("Transaction function cannot return a promise");
        this.exec(savepoint ? `RELEASE SAVEPOINT ${savepoint}` : "COMMIT");
        return result;
      } catch (e) {
        try {
          this.exec(savepoint ? `ROLLBACK TO SAVEPOINT ${savepoint}; RELEASE SAVEPOINT ${savepoint}` : "ROLLBACK");
        } catch {
          // the connection is gone; the server rolled the transaction back with it
        }
        throw e;
      } finally {
        this.depth--;
        if (this.depth === 0) this.txGen = undefined;
      }
    };
  }

  close(): void {
    if (this.closed) return;
    try {
      this.call({ op: "close" });
    } finally {
      this.closed = true;
      void this.worker.terminate();
    }
  }

  private call(req: Record<string, unknown>): Answer {
    if (this.closed) throw new PgError("the database is closed");
    const seq = ++this.seq;
    const gen = req.op === "exec" && req.sql === "BEGIN" ? undefined : this.txGen;
    Atomics.store(this.flag, 0, 0);
    this.port.postMessage({ ...req, seq, gen });
    const deadline = Date.now() + ANSWER_TIMEOUT_MS;
    for (;;) {
      const wait = Atomics.wait(this.flag, 0, 0, Math.max(0, deadline - Date.now()));
      Atomics.store(this.flag, 0, 0); // consumed: the worker posts before it raises the flag, so the answer is queued
      for (let got = receiveMessageOnPort(this.port); got; got = receiveMessageOnPort(this.port)) {
        const answer = got.message as Answer;
        if (answer.seq !== seq) continue; // the late answer to a query that timed out
        if (answer.error) throw new PgError(answer.error.message, answer.error.code, answer.error.detail, answer.error.constraint);
        return answer;
      }
      if (wait === "timed-out") throw new PgError(`PostgreSQL did not answer within ${ANSWER_TIMEOUT_MS / 1000} s`, "57014");
    }
  }
}

/** Values as SQLite would store them: booleans as 0/1, undefined as NULL. */
function toPg(v: unknown): unknown {
  if (v === undefined) return null;
  if (typeof v === "boolean") return v ? 1 : 0;
  return v;
}
