// The server's SQL runs on SQLite and on PostgreSQL (server-stub/SQL-PORTABILITY.md): every SQL text in
// server-stub is checked against the rules, and the statements rewritten for them keep their SQLite behaviour.
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";
import type { HealthReport } from "../../device/protocol";
import { bumpCounter, openDb, readCounter } from "../../server-stub/db";
import { getDevice, recordContact } from "../../server-stub/model/devices";
import { addMembers, ensureGroup, groupMembers } from "../../server-stub/model/groups";
import { healthReportsForDevice, storeHealthReport } from "../../server-stub/model/health-reports";

const ROOT = join(import.meta.dirname, "../../server-stub");
// The SQLite schema and its migrations (PostgreSQL has a schema of its own), and the PostgreSQL adapter.
const SQLITE_ONLY = new Set(["db.ts", "events/schema.ts"]);
const skipped = (rel: string) => rel.startsWith("db/") || rel.endsWith(".d.ts");

const FLAGS = "revoked|retired|registered|rollback|mandatory|force|is_beta|is_security_update|requires_approval|ok";
const RULES: Array<[string, RegExp]> = [
  ["INSERT OR IGNORE/REPLACE, REPLACE INTO: use ON CONFLICT", /\bINSERT\s+OR\s+\w+|\bREPLACE\s+INTO\b/i],
  ["named or numbered parameters: use ?", /(^|[\s(,=])[@:$][A-Za-z_]\w*|\?\d/],
  ["IS NOT <value>: use IS DISTINCT FROM", /\bIS\s+NOT\s+(?!NULL\b|DISTINCT\b)/i],
  ["a sum of a comparison: use SUM(CASE WHEN … THEN 1 ELSE 0 END)", /\bSUM\s*\(\s*[\w.]+\s*(=|!=|<>|<=|>=|<|>|\bIS\b|\bIN\b|\bLIKE\b)/i],
  ["a bare flag as a condition: compare it with = 1 or = 0", new RegExp(`\\b(WHERE|AND|OR|NOT|WHEN)\\s+([\\w]+\\.)?(${FLAGS})\\b(?!\\s*(=|!=|<>|IS\\b|IN\\b))`, "i")],
  ["SQLite-only function", /\b(IFNULL|GROUP_CONCAT|datetime|julianday|strftime|typeof|instr|printf|json_each|json_extract|last_insert_rowid)\s*\(/i],
  ["an unqualified column in a DO UPDATE expression: write table.column (PostgreSQL: ambiguous)", /\bDO\s+UPDATE\s+SET\b.*=\s*(?!excluded\.)[A-Za-z_]\w*\s*[-+*/|]/is],
  ["LIMIT -1", /\bLIMIT\s+-/i],
  ['a double-quoted string (PostgreSQL reads "x" as a name)', /"/],
];
const SQLITE_RULES: Array<[string, RegExp]> = [["SQLite catalogue or pragma", /\bsqlite_master\b|\bPRAGMA\b|\bAUTOINCREMENT\b/i]];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** The literal text of every string that reads like SQL, template holes left out. */
function sqlTexts(file: string): Array<{ line: number; text: string }> {
  const src = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const out: Array<{ line: number; text: string }> = [];
  const visit = (n: ts.Node) => {
    let text: string | null = null;
    if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) text = n.text;
    else if (ts.isTemplateExpression(n)) text = [n.head.text, ...n.templateSpans.map((s) => s.literal.text)].join(" ");
    if (text !== null && /\b(SELECT|INSERT|UPDATE|DELETE|CREATE|REPLACE\s+INTO)\b/.test(text)) {
      out.push({ line: src.getLineAndCharacterOfPosition(n.getStart(src)).line + 1, text });
      return;
    }
    ts.forEachChild(n, visit);
  };
  visit(src);
  return out;
}

describe("SQL portability", () => {
  it("every SQL text in server-stub follows the rules of SQL-PORTABILITY.md", () => {
    const broken: string[] = [];
    let checked = 0;
    for (const file of sourceFiles(ROOT)) {
      const rel = relative(ROOT, file).split("\\").join("/");
      if (skipped(rel)) continue;
      for (const { line, text } of sqlTexts(file)) {
        checked++;
        const sqliteOnly = SQLITE_ONLY.has(rel) && /\b(CREATE|ALTER|PRAGMA|sqlite_master)\b/i.test(text);
        for (const [rule, re] of [...RULES, ...(sqliteOnly ? [] : SQLITE_RULES)]) if (re.test(text)) broken.push(`${rel}:${line}: ${rule}`);
      }
    }
    expect(checked).toBeGreaterThan(150);
    expect(broken).toEqual([]);
  });
});

describe("statements rewritten for PostgreSQL keep their SQLite behaviour", () => {
  const db = openDb(join(mkdtempSync(join(tmpdir(), "ota-sql-")), "ota.db"));
  afterAll(() => db.close());

  it("recordContact forgets the firmware id only when a different version is reported", () => {
    recordContact(db, "c1", { current_version: "1.0.0", device_model: "M", chip_id: 5 }, 1000);
    db.prepare("UPDATE devices SET current_firmware_id = 'fw-1' WHERE device_id = 'c1'").run();
    recordContact(db, "c1", { hardware_version: "2.0" }, 5000); // no version: kept, the other fields untouched
    expect(getDevice(db, "c1")).toMatchObject({ current_version: "1.0.0", current_firmware_id: "fw-1", device_model: "M", chip_id: 5, hardware_version: "2.0" });
    recordContact(db, "c1", { current_version: "1.0.0" }, 90_000); // the same version (a contact worth writing: past CONTACT_RESOLUTION_MS): kept
    expect(getDevice(db, "c1")).toMatchObject({ current_firmware_id: "fw-1", last_contact_at: 90_000 });
    recordContact(db, "c1", { current_version: "1.1.0" }, 130_000); // another version: forgotten
    expect(getDevice(db, "c1")).toMatchObject({ current_version: "1.1.0", current_firmware_id: null });
    db.prepare("UPDATE devices SET current_version = NULL, current_firmware_id = 'fw-2' WHERE device_id = 'c1'").run();
    recordContact(db, "c1", { current_version: "1.2.0" }, 170_000); // a first version after none: forgotten
    expect(getDevice(db, "c1")).toMatchObject({ current_version: "1.2.0", current_firmware_id: null });
  });

  it("a health report resent with its sequence is stored once; reports without one, each time", () => {
    const r: HealthReport = { update_id: null, version: "1.0.0", reset_reason: "power_on", uptime_s: 1, free_heap: null, min_free_heap: null, crash_reboots: 0, checks: {}, metrics: {}, sequence: 7 };
    expect([storeHealthReport(db, "h1", r, 1), storeHealthReport(db, "h1", r, 2)]).toEqual([true, false]);
    expect([storeHealthReport(db, "h1", { ...r, sequence: null }, 3), storeHealthReport(db, "h1", { ...r, sequence: null }, 4)]).toEqual([true, true]);
    expect(healthReportsForDevice(db, "h1", 10).map((x) => x.received_at)).toEqual([4, 3, 1]);
  });

  it("groups and members added twice are kept once", () => {
    ensureGroup(db, "g", 1, "first");
    ensureGroup(db, "g", 2, "second");
    addMembers(db, "g", ["a", "b"], 1);
    addMembers(db, "g", ["b", "c"], 2);
    expect(groupMembers(db, "g")).toEqual(["a", "b", "c"]);
    expect(db.prepare("SELECT description FROM device_groups WHERE name = 'g'").get()).toEqual({ description: "first" });
  });

  it("bumpCounter adds to the stored value", () => {
    bumpCounter(db, "n", 5);
    bumpCounter(db, "n", 7);
    expect(readCounter(db, "n")).toBe(12);
  });
});
