// Server state: SQLite (better-sqlite3) by default, PostgreSQL with a database URL (db/pg.ts). Both are driven
// synchronously, so a status report and the campaign bookkeeping it triggers happen in one transaction that no
// other request interleaves with. Times are epoch milliseconds. The SQL is shared: see SQL-PORTABILITY.md.
import Database from "better-sqlite3";
import { EVENTS_SCHEMA, CAMPAIGN_EVENTS_VIEW, migrateEvents } from "./events/schema";
import { PgDb } from "./db/pg";
import { migratePg, pgAddedColumns, pgDdl } from "./db/pg-schema";
import { SqliteDb } from "./db/sqlite";
import type { Db } from "./db/types";

export type { Db } from "./db/types";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS signing_keys (
  key_id TEXT PRIMARY KEY, public_key TEXT NOT NULL, secret_key TEXT NOT NULL,
  created_at INTEGER NOT NULL, retired INTEGER NOT NULL DEFAULT 0, retired_at INTEGER,
  algorithm TEXT NOT NULL DEFAULT 'ed25519'
);
CREATE TABLE IF NOT EXISTS api_keys (
  key_hash TEXT PRIMARY KEY, key_prefix TEXT NOT NULL, role TEXT NOT NULL, device_id TEXT,
  name TEXT, created_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS api_keys_device ON api_keys(device_id);
CREATE TABLE IF NOT EXISTS devices (
  device_id TEXT PRIMARY KEY, registered INTEGER NOT NULL DEFAULT 0,
  device_model TEXT, hardware_version TEXT, chip_id INTEGER, secure_version INTEGER,
  current_version TEXT, current_firmware_id TEXT, previous_version TEXT, previous_firmware_id TEXT,
  last_contact_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS device_groups (
  name TEXT PRIMARY KEY, description TEXT, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS group_members (
  group_name TEXT NOT NULL, device_id TEXT NOT NULL, added_at INTEGER NOT NULL,
  PRIMARY KEY (group_name, device_id)
);
CREATE TABLE IF NOT EXISTS firmware (
  firmware_id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, description TEXT,
  device_model TEXT NOT NULL, manufacturer TEXT, min_hardware_version TEXT, max_hardware_version TEXT,
  file_size INTEGER NOT NULL, checksum_md5 TEXT NOT NULL, checksum_sha256 TEXT NOT NULL,
  tags TEXT NOT NULL, metadata TEXT NOT NULL, is_beta INTEGER NOT NULL, is_security_update INTEGER NOT NULL,
  changelog TEXT, image_format TEXT NOT NULL, chip_id INTEGER, secure_version INTEGER NOT NULL DEFAULT 0,
  project_name TEXT, created_at INTEGER NOT NULL, release_signature TEXT, release_key_id TEXT,
  UNIQUE (device_model, version)
);
CREATE TABLE IF NOT EXISTS key_list (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, document TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS updates (
  update_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, campaign_id TEXT, firmware_id TEXT NOT NULL,
  status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0,
  from_version TEXT, to_version TEXT NOT NULL, from_firmware_id TEXT,
  rollback INTEGER NOT NULL DEFAULT 0, reverts_update_id TEXT,
  priority TEXT NOT NULL, mandatory INTEGER NOT NULL DEFAULT 0, force INTEGER NOT NULL DEFAULT 0,
  pre_update_commands TEXT NOT NULL DEFAULT '[]', post_update_commands TEXT NOT NULL DEFAULT '[]',
  error_code TEXT, error_message TEXT,
  attempt INTEGER NOT NULL DEFAULT 1, max_retries INTEGER NOT NULL DEFAULT 0, retry_delay_s INTEGER NOT NULL DEFAULT 0,
  retry_of TEXT, retried_by TEXT, timeout_minutes INTEGER,
  created_at INTEGER NOT NULL, started_at INTEGER, completed_at INTEGER, last_activity_at INTEGER NOT NULL,
  cancel_reason TEXT, reason TEXT, report_conflict TEXT
);
CREATE INDEX IF NOT EXISTS updates_device ON updates(device_id, created_at);
CREATE INDEX IF NOT EXISTS updates_campaign ON updates(campaign_id);
CREATE INDEX IF NOT EXISTS updates_status ON updates(status);
CREATE TABLE IF NOT EXISTS status_reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT, update_id TEXT NOT NULL, sequence INTEGER,
  status TEXT NOT NULL, progress REAL, error_code TEXT, error_message TEXT,
  device_timestamp TEXT, received_at INTEGER NOT NULL, via TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS status_reports_seq ON status_reports(update_id, sequence) WHERE sequence IS NOT NULL;
CREATE TABLE IF NOT EXISTS campaigns (
  campaign_id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, firmware_id TEXT NOT NULL,
  deployment_strategy TEXT NOT NULL, priority TEXT NOT NULL, status TEXT NOT NULL,
  config TEXT NOT NULL,
  requires_approval INTEGER NOT NULL, approved_at INTEGER, approval_comment TEXT, approved_by TEXT,
  current_stage INTEGER NOT NULL DEFAULT 0, stage_ready_at INTEGER,
  pause_reason TEXT, pause_kind TEXT, cancel_reason TEXT, rollback_reason TEXT, failed_seen INTEGER NOT NULL DEFAULT 0,
  created_by TEXT, created_at INTEGER NOT NULL, started_at INTEGER, completed_at INTEGER, updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS campaign_stages (
  campaign_id TEXT NOT NULL, stage_index INTEGER NOT NULL, name TEXT NOT NULL, soak_minutes INTEGER NOT NULL DEFAULT 0,
  started_at INTEGER, finished_at INTEGER,
  PRIMARY KEY (campaign_id, stage_index)
);
CREATE TABLE IF NOT EXISTS campaign_devices (
  campaign_id TEXT NOT NULL, device_id TEXT NOT NULL, stage_index INTEGER NOT NULL, position INTEGER NOT NULL,
  state TEXT NOT NULL, update_id TEXT, rollback_update_id TEXT, note TEXT, finished_at INTEGER,
  PRIMARY KEY (campaign_id, device_id)
);
CREATE TABLE IF NOT EXISTS health_reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, update_id TEXT, version TEXT NOT NULL,
  reset_reason TEXT NOT NULL, uptime_s INTEGER NOT NULL, free_heap INTEGER, min_free_heap INTEGER,
  crash_reboots INTEGER NOT NULL, checks TEXT NOT NULL, metrics TEXT NOT NULL, sequence INTEGER,
  device_timestamp TEXT, received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS health_reports_update ON health_reports(update_id, received_at);
CREATE INDEX IF NOT EXISTS health_reports_device ON health_reports(device_id, received_at);
CREATE UNIQUE INDEX IF NOT EXISTS health_reports_seq ON health_reports(device_id, sequence) WHERE sequence IS NOT NULL;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS server_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patches (
  base_sha256 TEXT NOT NULL, target_sha256 TEXT NOT NULL, status TEXT NOT NULL, patch_sha256 TEXT, patch_size INTEGER,
  base_firmware_id TEXT, target_firmware_id TEXT, build_ms INTEGER NOT NULL, created_at INTEGER NOT NULL,
  PRIMARY KEY (base_sha256, target_sha256)
);
CREATE TABLE IF NOT EXISTS broker_accounts (
  device_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, sealed_secret TEXT, updated_at INTEGER NOT NULL
);
`;

/** Columns added after the first release: added to a data directory that predates them. */
const ADDED_COLUMNS: Record<string, Record<string, string>> = {
  signing_keys: { algorithm: "TEXT NOT NULL DEFAULT 'ed25519'" },
  devices: { running_sha256: "TEXT", tags: "TEXT" }, // tags: a JSON array, NULL = none
  updates: { delivery: "TEXT", delivery_note: "TEXT", patch_size: "INTEGER", bytes_saved: "INTEGER", reset_reason: "TEXT", coredump: "TEXT" },
};

function addColumns(db: Db) {
  for (const [table, columns] of Object.entries(ADDED_COLUMNS)) {
    const have = new Set((db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name));
    for (const [name, type] of Object.entries(columns)) if (!have.has(name)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${type}`);
  }
}

/** PostgreSQL when `databaseUrl` is given (postgres:// or postgresql://), else SQLite at `sqlitePath`. */
export function openDatabase(opts: { sqlitePath: string; databaseUrl?: string | null }): Db {
  return opts.databaseUrl ? openPgDb(opts.databaseUrl) : openDb(opts.sqlitePath);
}

export function openPgDb(url: string): Db {
  const db = new PgDb(url);
  try {
    migratePg(db, [pgDdl(SCHEMA), pgDdl(EVENTS_SCHEMA), pgDdl(CAMPAIGN_EVENTS_VIEW) + ";", pgAddedColumns(ADDED_COLUMNS)].join("\n"));
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

export function openDb(path: string): Db {
  const raw = new Database(path);
  raw.pragma("journal_mode = WAL");
  raw.pragma("busy_timeout = 5000");
  raw.pragma("foreign_keys = ON");
  cacheStatements(raw);
  const db = new SqliteDb(raw);
  db.exec(SCHEMA);
  addColumnIfMissing(db, "updates", "report_conflict", "TEXT"); // data dirs from before the column
  migrateEvents(db); // events, webhooks; campaign_events becomes a view over events
  addColumns(db);
  addColumnIfMissing(db, "firmware", "release_signature", "TEXT");
  addColumnIfMissing(db, "firmware", "release_key_id", "TEXT");
  return db;
}

function addColumnIfMissing(db: Db, table: string, column: string, type: string): void {
  const columns = db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>;
  if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
}

/**
 * Reuses prepared statements per SQL text: the code calls db.prepare() inline everywhere, and preparing is a
 * large share of a request's cost under fleet load. Safe here because no statement is iterated or switched
 * to pluck/raw/expand mode (those would leak into other users of the cached statement). Bounded, so SQL
 * built with variable-length lists cannot grow it without limit.
 */
function cacheStatements(db: Database.Database, max = 1000): void {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let st = cache.get(sql);
    if (!st) {
      st = prepare(sql);
      if (cache.size < max) cache.set(sql, st);
    }
    return st;
  }) as Database.Database["prepare"];
}

/** One page of rows and the total count behind it. `from` ("table WHERE …") and `order` are built from
 * constants, never from input; filter values go in `args`. */
export function pageOf<T>(db: Db, from: string, order: string, args: unknown[], limit: number, offset: number): { rows: T[]; total: number } {
  const rows = db.prepare(`SELECT * FROM ${from} ORDER BY ${order} LIMIT ? OFFSET ?`).all(...args, limit, offset) as T[];
  const total = (db.prepare(`SELECT COUNT(*) AS n FROM ${from}`).get(...args) as { n: number }).n;
  return { rows, total };
}

/** "('a','b')" for `IN` clauses from a constant list of plain words (the protocol's statuses), never from input. */
export function sqlList(words: readonly string[]): string {
  if (words.some((w) => !/^[a-z_]+$/.test(w))) throw new Error(`not a plain word list: ${words.join(",")}`);
  return `(${words.map((w) => `'${w}'`).join(",")})`;
}

export function bumpCounter(db: Db, name: string, by: number): void {
  db.prepare("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = counters.value + excluded.value").run(name, by);
}

export function readCounter(db: Db, name: string): number {
  const row = db.prepare("SELECT value FROM counters WHERE name = ?").get(name) as { value: number } | undefined;
  return row?.value ?? 0;
}

export const json = {
  parse<T>(text: string | null | undefined, fallback: T): T {
    if (!text) return fallback;
    try {
      return JSON.parse(text) as T;
    } catch {
      return fallback;
    }
  },
};

/** " FOR UPDATE" on PostgreSQL, where another replica may act on the same row; SQLite serialises its writers. */
export function forUpdate(db: Db): string {
  return db.dialect === "pg" ? " FOR UPDATE" : "";
}

/** Locks a device's row (PostgreSQL) before "is there an active update? then insert one", so two replicas cannot both insert. */
export function lockDevice(db: Db, deviceId: string): void {
  if (db.dialect === "pg") db.prepare("SELECT 1 FROM devices WHERE device_id = ? FOR UPDATE").get(deviceId);
}

/** A FROM-clause table of the strings in a JSON array text column, one row per element in a column named `value`. */
export function jsonTextArray(db: Db, column: string): string {
  return db.dialect === "pg" ? `jsonb_array_elements_text(${column}::jsonb) AS je(value)` : `json_each(${column})`;
}
