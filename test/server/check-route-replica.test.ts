// The check route reads everything it answers from in one statement per check (services/check-snapshot.ts), and
// caches only signed manifests (by content and signing keys) and their JSON text (by object and key list version).
// So a change written by ANOTHER process on the same database — a second connection here, as another replica or
// `ota-server` CLI would be — shows in the very next check, with no cache of this process told about it.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SignedUpdateEnvelope } from "../../device/protocol";
import { availableUpdatesPath, deviceUpdatePath } from "../../device/protocol/paths";
import { openDatabase, type Db } from "../../server-stub/db";
import { KeyStore } from "../../server-stub/signing/keystore";
import { testDatabase } from "../support/test-database";
import { api, asAdmin, randomBytes, registerDevice, startHarness, uploadFirmware, type Harness } from "./harness";

describe("check route and another process's writes", () => {
  let h: Harness;
  let other: Db;
  let key: string;
  let fw: { firmware_id: string };
  const check = async () => {
    const r = await api<SignedUpdateEnvelope & { key_list_version?: number }>(h, "GET", availableUpdatesPath("dev1", { current_version: "1.0.0" }), { apiKey: key });
    expect(r.status).toBe(200);
    return r.body;
  };
  const assign = async () => (await api(h, "POST", deviceUpdatePath("dev1"), { ...asAdmin(h), body: { firmware_id: fw.firmware_id, force: true } })).body.update_id as string;

  beforeAll(async () => {
    h = await startHarness();
    other = openDatabase({ sqlitePath: join(h.dataDir, "ota.sqlite"), databaseUrl: (await testDatabase(h.dataDir)).databaseUrl });
    fw = await uploadFirmware(h, { version: "1.2.0" }, randomBytes(6000, 3));
    key = await registerDevice(h, "dev1");
  });
  afterAll(async () => {
    other.close();
    await h.close();
  });

  it("offers nothing on the next check once another process cancelled the update", async () => {
    const id = await assign();
    expect((await check()).manifest.update_id).toBe(id);
    other.prepare("UPDATE updates SET status = 'cancelled' WHERE update_id = ?").run(id);
    expect(await check()).toEqual({ update_available: false });
  });

  it("carries the key list version another process published, in the very next answer", async () => {
    await assign();
    const before = await check();
    expect(before.key_list_version).toBeUndefined();
    other.prepare("INSERT INTO key_list(id, version, document) VALUES (1, ?, '{}') ON CONFLICT(id) DO UPDATE SET version = excluded.version").run(7);
    const after = await check();
    expect(after.key_list_version).toBe(7);
    expect(after.signatures).toEqual(before.signatures); // the same signed manifest, its text made again
    other.prepare("UPDATE key_list SET version = 8").run();
    expect((await check()).key_list_version).toBe(8);
    other.prepare("DELETE FROM key_list").run();
    expect((await check()).key_list_version).toBeUndefined();
  });

  it("signs with the key another process rotated to, and stops signing with one it retired", async () => {
    await assign();
    const before = await check();
    const keys = new KeyStore(other, h.clock);
    const rotated = keys.rotate("ed25519");
    const afterRotate = await check();
    expect(afterRotate.key_id).toBe(rotated.key_id);
    expect(afterRotate.manifest.issued_at).toBe(before.manifest.issued_at); // within the reuse time, yet signed afresh
    keys.retire(rotated.key_id);
    const afterRetire = await check();
    expect(afterRetire.key_id).toBe(before.key_id);
    expect(afterRetire.signatures?.map((s) => s.key_id)).not.toContain(rotated.key_id);
  });

  it("refuses the device's key on the next check once another process revoked it", async () => {
    await check();
    other.prepare("UPDATE api_keys SET revoked = 1 WHERE device_id = ?").run("dev1");
    const r = await api(h, "GET", availableUpdatesPath("dev1", { current_version: "1.0.0" }), { apiKey: key });
    expect(r.status).toBe(401);
  });
});
