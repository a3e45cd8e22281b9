// The PostgreSQL connection of one server process, in a worker thread: the main thread posts a query and sleeps on
// `flag` (Atomics.wait) until this thread has posted the answer (see pg.ts). Plain JavaScript so that it loads the
// same under node, tsx and vitest.
import { workerData } from "node:worker_threads";
import pg from "pg";

const { port, flag, url, applicationName } = workerData;

// COUNT/SUM give int8 and AVG numeric, which `pg` returns as strings; booleans become 0/1 as in SQLite.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));
pg.types.setTypeParser(16, (v) => (v === "t" ? 1 : 0));

let client = null;
let generation = 0; // bumped on every new connection: a transaction must not continue on a fresh one
const names = new Map(); // SQL text → server-side prepared statement name
const MAX_NAMED = 4000;

async function connection() {
  if (client) return client;
  const c = new pg.Client({ connectionString: url, keepAlive: true, application_name: applicationName });
  c.on("error", () => {
    if (client === c) client = null; // the server went away; the next query reconnects
  });
  await c.connect();
  // A statement or an idle transaction that hangs must not hold locks (and other replicas) forever.
  await c.query("SET statement_timeout = '30s'; SET idle_in_transaction_session_timeout = '60s'");
  client = c;
  generation++;
  names.clear();
  return c;
}

async function handle(req) {
  if (req.op === "close") {
    const c = client;
    client = null;
    if (c) await c.end().catch(() => {});
    return {};
  }
  if (req.gen !== undefined && req.gen !== generation) {
    throw Object.assign(new Error("the database connection was lost inside a transaction"), { code: "08006" });
  }
  const c = await connection();
  if (req.op === "gen") return { gen: generation };
  if (req.op === "exec") {
    await c.query(req.sql);
    return {};
  }
  let name = names.get(req.sql);
  if (name === undefined && names.size < MAX_NAMED) names.set(req.sql, (name = `s${names.size}`));
  const r = await c.query({ name, text: req.sql, values: req.params });
  return { rows: r.rows, changes: r.rowCount ?? 0 };
}

port.on("message", async (req) => {
  let answer;
  try {
    answer = { seq: req.seq, ...(await handle(req)) };
  } catch (e) {
    if (client && e && typeof e === "object" && /terminat|ECONNRESET|EPIPE|not queryable/i.test(String(e.message))) client = null;
    answer = { seq: req.seq, error: { message: String(e?.message ?? e), code: e?.code, detail: e?.detail, constraint: e?.constraint } };
  }
  port.postMessage(answer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
