// Trust that survives a compromised server (issue 11, point 3): a device built with release-key enforcement
// installs only images the firmware team's offline release key signed, whatever the server signs; the trusted keys
// rotate over the air by a key list the current release key signs, persisted across reboots. On Node and XS.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TrustedKey } from "../device/core/config";
import { resolveConfig } from "../device/core/config";
import { JournalStore } from "../device/core/journal-store";
import type { KeySet } from "../device/core/release-keys";
import { currentKeySet, encodeKeySet, KeyListRefused, verifyKeyList } from "../device/core/release-keys";
import { StateStore } from "../device/core/state";
import { SimRawFlash } from "../host-sim/device/sim-raw-flash";
import type { Partition } from "../host-sim/esp/partition-table";
import { NorFlash, PowerCutError, SECTOR_SIZE } from "../host-sim/flash/nor-flash";
import { ROUTES, type KeyList, type PublicKeyEntry } from "../device/protocol";
import type { AgentRuntime } from "../host-sim/device/sim-device";
import { generateReleaseKey, releaseStatement, signKeyList, signRelease, type ReleaseKeyFile } from "../release/signing";
import type { World } from "./helpers/e2e";
import { assign, device, image, inspect, MODEL, startWorld, TEST_AGENT, updateRecord } from "./helpers/e2e";
import { api, asAdmin, firmwareForm } from "./server/harness";

const K1 = generateReleaseKey(new Uint8Array(32).fill(11));
const K2 = generateReleaseKey(new Uint8Array(32).fill(12));
const ATTACKER = generateReleaseKey(new Uint8Array(32).fill(66));
const pub = (k: ReleaseKeyFile): PublicKeyEntry => ({ key_id: k.key_id, public_key: k.public_key });
const trusted = (k: ReleaseKeyFile): TrustedKey => ({ keyId: k.key_id, publicKey: k.public_key });

/** ota-sign's signature file for an image, as CI makes it. */
function signatureFile(bytes: Uint8Array, key: ReleaseKeyFile, model = MODEL): string {
  return JSON.stringify(signRelease(releaseStatement(bytes, { model }), key));
}

async function uploadSigned(w: World, version: string, key: ReleaseKeyFile | null) {
  const bytes = image(version);
  const form = firmwareForm({ version, device_model: MODEL, name: `fw ${version}` }, bytes);
  if (key) form.append("release_signature", signatureFile(bytes, key));
  return api(w.h, "POST", ROUTES.firmwareList, { ...asAdmin(w.h), body: form });
}

function keyList(version: number, release: ReleaseKeyFile[], server: PublicKeyEntry[]): KeyList {
  return { key_list_version: version, issued_at: "2026-11-30T12:00:00.000Z", release_keys: release.map(pub), server_keys: server };
}

describe("a key list, as the device checks it", () => {
  const server = [{ key_id: "srv_1", public_key: K1.public_key }];
  const current: KeySet = { version: 3, releaseKeys: [trusted(K1)], serverKeys: [{ keyId: "srv_1", publicKey: K1.public_key }] };
  const body = (list: KeyList, key: ReleaseKeyFile) => JSON.stringify(signKeyList(list, key));

  it("replaces the keys when newer and signed by a current release key, the signer retired for a successor", () => {
    expect(verifyKeyList(body(keyList(4, [K2], server), K1), current)).toEqual({ version: 4, releaseKeys: [trusted(K2)], serverKeys: [{ keyId: "srv_1", publicKey: K1.public_key }] });
  });

  it.each([
    ["an older version", keyList(2, [K1, K2], server), K1, /not newer than the trusted 3/],
    ["the same version again", keyList(3, [K1, K2], server), K1, /not newer/],
    ["a signer this device does not trust", keyList(4, [ATTACKER], server), ATTACKER, /not a release key this device trusts/],
    ["a list that retires its signer without a successor", keyList(4, [], server), K1, /release_keys is empty: it would retire its signer without a successor/],
    ["a list without server keys", keyList(4, [K1], []), K1, /server_keys is empty/],
  ])("refuses %s", (_what, list, key, message) => {
    expect(() => verifyKeyList(body(list, key), current)).toThrow(message);
  });

  it("refuses a list changed after signing, and one whose key_id claims a trusted key it was not signed by", () => {
    const signed = signKeyList(keyList(4, [K2], server), K1);
    const tampered = { ...signed, key_list: { ...signed.key_list, release_keys: [pub(ATTACKER)] } };
    expect(() => verifyKeyList(JSON.stringify(tampered), current)).toThrow(KeyListRefused);
    const forged = { ...signKeyList(keyList(4, [ATTACKER], server), ATTACKER), key_id: K1.key_id };
    expect(() => verifyKeyList(JSON.stringify(forged), current)).toThrow(/does not verify/);
  });
});

describe("the trusted key set in the journal", () => {
  const part: Partition = { name: "agent", type: 1, subtype: 6, offset: 0, size: 4 * SECTOR_SIZE, encrypted: false, readonly: false };
  const config = resolveConfig({ deviceId: "d", deviceModel: MODEL, hardwareVersion: "1", serverUrl: "http://x", apiKey: "k", trustedKeys: [{ keyId: "srv_1", publicKey: K1.public_key }], releaseKeys: [trusted(K1)] });
  const store = (flash: NorFlash) => new StateStore(new JournalStore(new SimRawFlash(flash, part), 1));
  const next: KeySet = { version: 7, releaseKeys: [trusted(K2)], serverKeys: [{ keyId: "srv_2", publicKey: K2.public_key }] };

  it("a power cut while it is stored leaves the old set or the new one, never a mix; the new one survives reboots", () => {
    const base = NorFlash.memory(4 * SECTOR_SIZE);
    for (let i = 0; i < 5; i++) store(base).recordApplied({ update_id: `upd_${i}`, issued_at: "2026-11-30T10:00:00.000Z" } as never);
    const old = currentKeySet(store(base), config);
    expect(old.version).toBe(0);
    const outcomes = new Set<number>();
    for (let n = 1; n <= 12; n++) {
      for (const fault of [{ cutAfter: n }, { tear: { op: n, fraction: 0.5 } }]) {
        const flash = NorFlash.memoryCopy(base);
        flash.armFaults(fault);
        try {
          store(flash).saveTrustedKeySet(encodeKeySet(next));
        } catch (e) {
          expect(e).toBeInstanceOf(PowerCutError);
        }
        flash.powerOn();
        const after = currentKeySet(store(flash), config);
        expect([old, next]).toContainEqual(after);
        outcomes.add(after.version);
      }
    }
    expect([...outcomes].sort()).toEqual([0, 7]);
    const flash = NorFlash.memoryCopy(base);
    store(flash).saveTrustedKeySet(encodeKeySet(next));
    expect(currentKeySet(store(flash), config)).toEqual(next);
  });
});

describe("the server and release signatures", () => {
  let w: World;
  beforeAll(async () => (w = await startWorld("node", { releaseKeys: [pub(K1)], requireReleaseSignature: true })));
  afterAll(async () => w?.close());
  const count = async () => (await api(w.h, "GET", ROUTES.firmwareList, asAdmin(w.h))).body.total as number;

  it("refuses an upload without a signature, or signed by another key or for other bytes, and stores nothing", async () => {
    const before = await count();
    expect((await uploadSigned(w, "2.0.0", null)).body).toMatchObject({ error: { code: "RELEASE_SIGNATURE_REQUIRED" } });
    const other = uploadSigned(w, "2.0.0", ATTACKER);
    expect((await other).status).toBe(400);
    expect((await other).body).toMatchObject({ error: { code: "RELEASE_SIGNATURE_INVALID" } });
    const form = firmwareForm({ version: "2.0.0", device_model: MODEL, name: "fw" }, image("2.0.0"));
    form.append("release_signature", signatureFile(image("2.0.1"), K1));
    expect((await api(w.h, "POST", ROUTES.firmwareList, { ...asAdmin(w.h), body: form })).body).toMatchObject({ error: { code: "RELEASE_SIGNATURE_INVALID" } });
    expect(await count()).toBe(before);
    const ok = await uploadSigned(w, "2.0.0", K1);
    expect(ok.status).toBe(201);
    expect(ok.body.release_key_id).toBe(K1.key_id);
  });

  it("publishes only a newer key list signed by a current release key", async () => {
    const put = (doc: unknown) => api(w.h, "PUT", ROUTES.keyList, { ...asAdmin(w.h), body: doc });
    const server = [{ key_id: "srv", public_key: K2.public_key }];
    expect((await put(signKeyList(keyList(1, [K2], server), ATTACKER))).body).toMatchObject({ error: { code: "KEY_LIST_SIGNATURE_INVALID" } });
    expect((await put(signKeyList(keyList(1, [K2], server), K1))).status).toBe(200);
    expect((await put(signKeyList(keyList(1, [K1], server), K2))).status).toBe(409);
    // K1 is retired now: its uploads are refused too.
    expect((await uploadSigned(w, "2.1.0", K1)).body).toMatchObject({ error: { code: "RELEASE_SIGNATURE_INVALID" } });
    expect((await uploadSigned(w, "2.1.0", K2)).status).toBe(201);
  });
});

const RUNTIMES: AgentRuntime[] = ["node", "xs"];

describe.each(RUNTIMES)("release-key enforcement on %s", (runtime) => {
  let w: World;
  // Unsigned uploads pass the server here, as they would a compromised one: only the device's checks stand in the way.
  beforeAll(async () => (w = await startWorld(runtime, { releaseKeys: [pub(K1)] })));
  afterAll(async () => w?.close());

  const enforcing = (id: string) =>
    device(w, `${runtime}-${id}`, { extra: { agent: { ...TEST_AGENT, releaseKeys: [trusted(K1)], requireReleaseSignature: true } } });

  /** What a compromised server does: it stores whatever release signature it likes and signs the manifest. */
  function forgeRelease(firmwareId: string, signature: string | null, keyId: string | null) {
    w.h.server.ctx.db.prepare("UPDATE firmware SET release_signature = ?, release_key_id = ? WHERE firmware_id = ?").run(signature, keyId, firmwareId);
  }

  async function refused(dev: Awaited<ReturnType<typeof enforcing>>["dev"], firmwareId: string) {
    const { update_id } = await assign(w, dev.options.id, firmwareId);
    await dev.powerOn(); // booted, not yet checked: what a refusal must leave as it is
    const before = inspect(dev.flash);
    const downloaded = dev.http.downloaded;
    const r = await dev.runCycle();
    expect(r.outcome).toMatchObject({ result: "failed", code: "RELEASE_SIGNATURE_INVALID", updateId: update_id });
    expect(inspect(dev.flash)).toEqual(before);
    expect(dev.http.downloaded).toBe(downloaded);
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "failed", error: { code: "RELEASE_SIGNATURE_INVALID" } });
  }

  it("installs an image signed by the release key", async () => {
    const up = await uploadSigned(w, "1.1.0", K1);
    expect(up.status).toBe(201);
    const { dev } = await enforcing("signed");
    await assign(w, dev.options.id, up.body.firmware_id);
    expect(await dev.runCycle()).toMatchObject({ slot: "ota_1", version: "1.1.0", lastBoot: "confirmed" });
  });

  it("refuses an unsigned image and a forged release signature, though the server's manifest signature holds", async () => {
    const unsigned = (await uploadSigned(w, "1.2.0", null)).body.firmware_id as string;
    const forged = (await uploadSigned(w, "1.2.1", null)).body.firmware_id as string;
    // The attacker's key under K1's id, and K1's real signature of another image: neither covers 1.2.1.
    forgeRelease(forged, JSON.parse(signatureFile(image("1.2.1"), ATTACKER)).signature, K1.key_id);
    const { dev } = await enforcing("refused");
    await refused(dev, unsigned);
    await refused(dev, forged);
    forgeRelease(forged, JSON.parse(signatureFile(image("1.1.0"), K1)).signature, K1.key_id);
    await refused(dev, forged);
    expect(inspect(dev.flash).versions).toMatchObject({ ota_0: "1.0.0", ota_1: null });
  });

  it("rotates to a new release key by a signed key list; the retired key's images are refused after a reboot", async () => {
    const { dev } = await enforcing("rotated");
    const list = signKeyList(keyList(1, [K2], w.keys.map((k) => ({ key_id: k.keyId!, public_key: k.publicKey, ...(k.alg ? { alg: k.alg } : {}) }))), K1);
    expect((await api(w.h, "PUT", ROUTES.keyList, { ...asAdmin(w.h), body: list })).status).toBe(200);
    const v130 = (await uploadSigned(w, "1.3.0", K2)).body.firmware_id as string;
    await assign(w, dev.options.id, v130);
    expect(await dev.runCycle()).toMatchObject({ version: "1.3.0", lastBoot: "confirmed" });
    expect(dev.logs.some((l) => l.includes("key list installed"))).toBe(true);
    // Power off and on, and the server no longer serves the list: the rotated keys come from the journal, not
    // the build nor the server. A 1.4.0 signed with the retired K1 (a leaked old key) is refused.
    await dev.powerOff();
    w.h.server.ctx.db.prepare("DELETE FROM key_list").run();
    const v140 = (await uploadSigned(w, "1.4.0", null)).body.firmware_id as string;
    forgeRelease(v140, JSON.parse(signatureFile(image("1.4.0"), K1)).signature, K1.key_id);
    await refused(dev, v140);
    expect((await api(w.h, "PUT", ROUTES.keyList, { ...asAdmin(w.h), body: list })).status).toBe(200);
    const v150 = (await uploadSigned(w, "1.5.0", K2)).body.firmware_id as string;
    await assign(w, dev.options.id, v150);
    expect(await dev.runCycle()).toMatchObject({ version: "1.5.0", lastBoot: "confirmed" });
  });
});
