// The device check route's shortcuts (bench:scale's profile): a signed manifest answers the same update's checks
// again for up to a minute, never across a change of its content or of the signing keys, never for a cancelled
// update; a contact that says nothing new within 30 s is not written again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SignedUpdateEnvelope } from "../../device/protocol";
import { availableUpdatesPath, deviceUpdatePath, ROUTES, updateCancelPath } from "../../device/protocol/paths";
import { CONTACT_RESOLUTION_MS, getDevice } from "../../server-stub/model/devices";
import { MANIFEST_REUSE_MAX_MS } from "../../server-stub/services/manifest";
import { api, asAdmin, randomBytes, registerDevice, startHarness, uploadFirmware, type Harness } from "./harness";

describe("check route caches", () => {
  let h: Harness;
  let key: string;
  let fw: { firmware_id: string };
  const check = async (query: Record<string, string> = { current_version: "1.0.0" }) =>
    (await api<SignedUpdateEnvelope>(h, "GET", availableUpdatesPath("dev1", query), { apiKey: key })).body;
  const assign = async (force = false) => (await api(h, "POST", deviceUpdatePath("dev1"), { ...asAdmin(h), body: { firmware_id: fw.firmware_id, force } })).body.update_id as string;

  beforeAll(async () => {
    h = await startHarness();
    fw = await uploadFirmware(h, { version: "1.2.0" }, randomBytes(6000, 7));
    key = await registerDevice(h, "dev1");
  });
  afterAll(() => h.close());

  it("answers repeated checks with the same signed manifest until the reuse time is over", async () => {
    await assign();
    const first = await check();
    h.clock.advance(MANIFEST_REUSE_MAX_MS - 1);
    expect(await check()).toEqual(first);
    h.clock.advance(1);
    const fresh = await check();
    expect(fresh.manifest.update_id).toBe(first.manifest.update_id);
    expect(fresh.manifest.issued_at).toBe(new Date(h.clock.now()).toISOString());
    expect(fresh.signatures).not.toEqual(first.signatures);
  });

  it("re-signs at once when a signing key is rotated, with the new key", async () => {
    const before = await check();
    const rotated = (await api(h, "POST", ROUTES.keyRotate, asAdmin(h))).body as { key_id: string };
    const after = await check();
    expect(before.key_id).not.toBe(rotated.key_id);
    expect(after.key_id).toBe(rotated.key_id);
    expect(after.signatures?.map((s) => s.key_id)).toContain(rotated.key_id);
  });

  it("re-signs at once when the manifest's content changes (the CDN's URL)", async () => {
    const before = await check();
    h.server.ctx.config.cdn = { enabled: true, base_url: "https://cdn.example.com/ota", cache_control: null, fallback_url: null };
    try {
      const after = await check();
      expect(after.manifest.download_url).toMatch(/^https:\/\/cdn\.example\.com\/ota\//);
      expect(after.manifest.issued_at).toBe(before.manifest.issued_at); // same time, yet signed afresh over the new URL
      expect(after.signatures).not.toEqual(before.signatures);
    } finally {
      h.server.ctx.config.cdn = null;
    }
  });

  it("offers nothing once the update is cancelled, and a new update gets its own manifest", async () => {
    const before = await check();
    const r = await api(h, "POST", updateCancelPath(before.manifest.update_id), { ...asAdmin(h), body: { reason: "test" } });
    expect(r.status).toBe(200);
    expect(await check()).toEqual({ update_available: false });
    const next = await assign();
    const after = await check();
    expect(after.manifest.update_id).toBe(next);
    expect(after.manifest.update_id).not.toBe(before.manifest.update_id);
  });

  it("writes a contact that says nothing new only once per CONTACT_RESOLUTION_MS (30 s), and one that does at once", async () => {
    const contactAt = () => getDevice(h.server.ctx.db, "dev1")!.last_contact_at;
    h.clock.advance(CONTACT_RESOLUTION_MS);
    await check();
    const t0 = h.clock.now();
    expect(contactAt()).toBe(t0);
    h.clock.advance(CONTACT_RESOLUTION_MS - 1);
    await check();
    expect(contactAt()).toBe(t0);
    await check({ current_version: "1.1.0" }); // a new version is news: written at once
    expect(contactAt()).toBe(h.clock.now());
    expect(getDevice(h.server.ctx.db, "dev1")!.current_version).toBe("1.1.0");
    h.clock.advance(1);
    await check({ current_version: "1.1.0" });
    expect(contactAt()).toBe(t0 + CONTACT_RESOLUTION_MS - 1);
    h.clock.advance(CONTACT_RESOLUTION_MS);
    await check({ current_version: "1.1.0" });
    expect(contactAt()).toBe(h.clock.now());
  });

  it("records news other than the contact at once: the image the device runs, the version an update started from", async () => {
    await check({ current_version: "1.1.0" });
    const sha = "ab".repeat(32);
    await check({ current_version: "1.1.0", running_sha256: sha }); // within the contact resolution
    expect(getDevice(h.server.ctx.db, "dev1")!.running_sha256).toBe(sha);
    const id = await assign(true);
    h.server.ctx.db.prepare("UPDATE updates SET from_version = NULL WHERE update_id = ?").run(id); // as a record from before versions were known
    await check({ current_version: "1.1.0", running_sha256: sha });
    const u = h.server.ctx.db.prepare("SELECT from_version FROM updates WHERE update_id = ?").get(id) as { from_version: string | null };
    expect(u.from_version).toBe("1.1.0");
  });
});
