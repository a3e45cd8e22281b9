// What a server has stored, as one comparable string: a digest of every table's rows and the files under blobs/ and
// tmp/. A refused request must leave it as it was (SQLite's total_changes would also count a rolled-back transaction).
import { createHash } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Harness } from "../server/harness";

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? files(p) : [`${p}:${statSync(p).size}`];
  });
}

export function storedState(h: Harness): string {
  const db = h.server.ctx.db;
  const digest = createHash("sha256");
  // The catalogue is the one dialect-specific query; rows are sorted here, since PostgreSQL tables have no implicit rowid.
  const tables = db.prepare(db.dialect === "pg"
    ? "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
    : "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
  // Table names come from the catalogue, not from input.
  for (const { name } of tables) digest.update(`${name}:${JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).all().map((r) => JSON.stringify(r)).sort())}\n`);
  return [digest.digest("hex"), ...files(join(h.dataDir, "blobs")), "tmp:", ...files(join(h.dataDir, "tmp"))].join("\n");
}
