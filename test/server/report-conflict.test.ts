// A status report whose versions contradict the server's record of the update is kept, and the update is
// flagged (report_conflict) with a warning event, so an operator sees a device that was not where the server
// thought, or installed something else.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDb } from "../../server-stub/db";
import { api, asAdmin, randomBytes, registerDevice, report, startHarness, uploadFirmware, type Harness } from "./harness";
import { pgMode } from "../support/test-database";

describe("reports that contradict the update record", () => {
  let h: Harness;
  let fwId: string;
  beforeAll(async () => {
    h = await startHarness();
    fwId = (await uploadFirmware(h, { version: "1.2.0" }, randomBytes(6000, 5))).firmware_id;
  });
  afterAll(() => h.close());

  /** A device on 1.1.0 with update to 1.2.0 assigned, already installing. */
  async function installing(id: string) {
    const key = await registerDevice(h, id, { current_version: "1.1.0" });
    const u = (await api(h, "POST", `/api/v1/devices/${id}/update`, { ...asAdmin(h), body: { firmware_id: fwId } })).body;
    await report(h, key, u.update_id, "downloading", "installing");
    return { key, updateId: u.update_id as string };
  }
  const record = async (updateId: string) => (await api(h, "GET", `/api/v1/updates/${updateId}`, asAdmin(h))).body;
  const reportsOf = (updateId: string) => h.server.ctx.db.prepare("SELECT status FROM status_reports WHERE update_id = ?").all(updateId);
  const conflictEvents = (updateId: string) => h.logs.filter((l) => l.includes("update_report_conflict") && l.includes(updateId));

  it("leaves a consistent report unflagged", async () => {
    const { key, updateId } = await installing("agree");
    await report(h, key, updateId, { status: "completed", from_version: "1.1.0", to_version: "1.2.0" });
    expect(await record(updateId)).toMatchObject({ status: "completed", report_conflict: null });
    expect(conflictEvents(updateId)).toEqual([]);
  });

  it.each([
    ["completed to another version", { status: "completed", from_version: "1.1.0", to_version: "1.3.0" }, /to_version 1.3.0, the record says 1.2.0/],
    ["completed from a version the device was not on", { status: "completed", from_version: "0.9.0", to_version: "1.2.0" }, /from_version 0.9.0, the record says 1.1.0/],
    ["rolled back from a version the device was not on", { status: "rolled_back", error_code: "SELF_TEST_FAILED", from_version: "1.0.0", to_version: "1.2.0" }, /from_version 1.0.0/],
  ] as const)("flags %s, keeps the report and warns", async (name, body, conflict) => {
    const { key, updateId } = await installing(`conflict-${name.replace(/ /g, "-")}`);
    const [res] = await report(h, key, updateId, body);
    expect(res!.status).toBe(200);
    const u = await record(updateId);
    expect(u.status).toBe(body.status);
    expect(u.report_conflict).toMatch(conflict);
    expect(reportsOf(updateId)).toContainEqual({ status: body.status });
    expect(conflictEvents(updateId)).toHaveLength(1);
    expect(conflictEvents(updateId)[0]).toMatch(/"level":40|WARN/);
  });

  // A SQLite data dir from before the column: the PostgreSQL schema never lacked it, so the PG run skips this.
  it.skipIf(pgMode)("adds the column to a data directory created before it", () => {
    const path = join(mkdtempSync(join(tmpdir(), "ota-conflict-")), "ota.db");
    const old = openDb(path);
    old.exec("ALTER TABLE updates DROP COLUMN report_conflict");
    old.close();
    const db = openDb(path);
    expect((db.prepare("PRAGMA table_info(updates)").all() as Array<{ name: string }>).map((c) => c.name)).toContain("report_conflict");
    db.close();
  });
});
