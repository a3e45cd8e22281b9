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
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
  // Table names come from sqlite_master, not from input.
  for (const { name } of tables) digest.update(`${name}:${JSON.stringify(db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all())}\n`);
  return [digest.digest("hex"), ...files(join(h.dataDir, "blobs")), "tmp:", ...files(join(h.dataDir, "tmp"))].join("\n");
}
