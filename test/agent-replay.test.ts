// A manifest is applied at most once: the device journals what it consumed (update ids and the newest issued_at)
// and refuses a replay, a signed rollback included, across reboots and power cuts. On Node and on XS, against
// the real server through a proxy that records its answers and replays them.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JournalStore } from "../device/core/journal-store";
import type { UpdateManifest } from "../device/protocol/manifest";
import { APPLIED_IDS_MAX, StateStore } from "../device/core/state";
import { SimRawFlash } from "../host-sim/device/sim-raw-flash";
import type { AgentRuntime } from "../host-sim/device/sim-device";
import type { Partition } from "../host-sim/esp/partition-table";
import { NorFlash, SECTOR_SIZE } from "../host-sim/flash/nor-flash";
import type { World } from "./helpers/e2e";
import { assign, device, image, inspect, recordedOffer, startWorld, updateRecord, upload } from "./helpers/e2e";
import { api, asAdmin } from "./server/harness";

const RUNTIMES: AgentRuntime[] = ["node", "xs"];

describe("the applied record in the journal", () => {
  const part: Partition = { name: "agent", type: 1, subtype: 6, offset: 0, size: 4 * SECTOR_SIZE, encrypted: false, readonly: false };
  const manifest = (id: string, issuedAt: string) => ({ update_id: id, issued_at: issuedAt }) as UpdateManifest;

  it("survives a reboot, keeps the newest issued_at and only the last ids", () => {
    const flash = NorFlash.memory(4 * SECTOR_SIZE);
    const store = () => new StateStore(new JournalStore(new SimRawFlash(flash, part), 1));
    expect(store().applied()).toEqual({ newestIssuedMs: 0, updateIds: [] });
    for (let i = 1; i <= APPLIED_IDS_MAX + 3; i++) store().recordApplied(manifest(`upd_${i}`, `2026-11-22T10:00:0${i % 10}.000Z`));
    store().recordApplied(manifest("upd_old", "2026-11-21T00:00:00.000Z")); // never lowers the floor
    const after = store().applied();
    expect(after.newestIssuedMs).toBe(Date.parse("2026-11-22T10:00:09.000Z"));
    expect(after.updateIds).toHaveLength(APPLIED_IDS_MAX);
    expect(after.updateIds.at(-1)).toBe("upd_old");
    expect(after.updateIds).not.toContain("upd_1");
  });
});

describe.each(RUNTIMES)("replays on %s", (runtime) => {
  let w: World;
  let v110: string;
  let v120: string;
  beforeAll(async () => {
    w = await startWorld(runtime, { deltas: false }); // scenarios about the image download itself
    await upload(w, "1.0.0");
    v110 = await upload(w, "1.1.0");
    v120 = await upload(w, "1.2.0");
  });
  afterAll(async () => w?.close());

  async function rollback(deviceId: string): Promise<string> {
    const rb = await api(w.h, "POST", `/api/v1/devices/${deviceId}/rollback`, { ...asAdmin(w.h), body: { target_version: "1.0.0", reason: "test" } });
    expect(rb.status).toBeLessThan(300);
    return rb.body.update_id as string;
  }

  it("a consumed rollback manifest, replayed after a power cut, is refused", async () => {
    const { dev } = await device(w, `${runtime}-rb-replay`);
    await assign(w, dev.options.id, v110);
    expect((await dev.runCycle()).version).toBe("1.1.0");
    const rbId = await rollback(dev.options.id);
    expect(await dev.runCycle()).toMatchObject({ slot: "ota_0", version: "1.0.0", lastBoot: "confirmed" });
    const consumed = recordedOffer(w.proxy, dev.options.id, rbId);
    // Back on 1.1.0 (ota_1); power fails in the middle of that download and the update resumes after the reboot.
    await assign(w, dev.options.id, v110);
    expect((await dev.powerOn()).kind).toBe("running");
    dev.flash.armFaults({ cutAfter: 20 });
    await dev.agent!.checkNow().catch((e: unknown) => e);
    expect(dev.flash.isPowered).toBe(false);
    expect(await dev.runCycle()).toMatchObject({ slot: "ota_1", version: "1.1.0", lastBoot: "confirmed" });
    // The signed rollback would still verify, is not expired, and ota_0 holds its image: only the record stops it.
    const before = inspect(dev.flash);
    const downloaded = dev.http.downloaded;
    w.proxy.availableUpdates = (id) => (id === dev.options.id ? consumed : null);
    try {
      const r = await dev.runCycle();
      expect(r.outcome).toMatchObject({ result: "failed", code: "MANIFEST_REPLAYED", updateId: rbId });
      expect(r).toMatchObject({ slot: "ota_1", version: "1.1.0" });
    } finally {
      w.proxy.availableUpdates = null;
    }
    expect(inspect(dev.flash)).toEqual(before);
    expect(dev.http.downloaded).toBe(downloaded);
    expect(await updateRecord(w, rbId)).toMatchObject({ status: "completed" });
  });

  it("a rollback manifest issued before the newest applied update is refused, though never applied", async () => {
    const { dev, apiKey } = await device(w, `${runtime}-rb-older`);
    await assign(w, dev.options.id, v110);
    expect((await dev.runCycle()).version).toBe("1.1.0");
    // A rollback is ordered and recorded on the way (signed an hour ago), then cancelled before the device saw it.
    const rbId = await rollback(dev.options.id);
    const now = w.h.clock.now();
    w.h.clock.set(now - 3600_000);
    const captured = JSON.stringify((await api(w.h, "GET", `/api/v1/devices/${dev.options.id}/available-updates`, { apiKey })).body);
    w.h.clock.set(now);
    expect((await api(w.h, "POST", `/api/v1/updates/${rbId}/cancel`, { ...asAdmin(w.h), body: {} })).status).toBeLessThan(300);
    await assign(w, dev.options.id, v120);
    expect((await dev.runCycle()).version).toBe("1.2.0");
    w.proxy.availableUpdates = (id) => (id === dev.options.id ? captured : null);
    try {
      const r = await dev.runCycle();
      expect(r.outcome).toMatchObject({ result: "failed", code: "MANIFEST_REPLAYED", updateId: rbId });
      expect(r).toMatchObject({ version: "1.2.0" });
    } finally {
      w.proxy.availableUpdates = null;
    }
  });

  it("a failed download consumes its update id; the server's retry is a new id, and is applied", async () => {
    const bytes = image("1.1.5");
    const fw = await upload(w, "1.1.5", { bytes });
    const blob = w.h.server.ctx.blobs.pathFor(createHash("sha256").update(bytes).digest("hex"));
    const original = readFileSync(blob);
    const { dev } = await device(w, `${runtime}-retry`);
    const first = await assign(w, dev.options.id, fw);
    writeFileSync(blob, Buffer.from(original).fill(0x5a, 40_000, 40_001));
    try {
      expect((await dev.runCycle()).outcome).toMatchObject({ result: "failed", code: "CHECKSUM_MISMATCH" });
    } finally {
      writeFileSync(blob, original);
    }
    const consumed = recordedOffer(w.proxy, dev.options.id, first.update_id);
    const retry = await api(w.h, "POST", `/api/v1/updates/${first.update_id}/retry`, { ...asAdmin(w.h), body: {} });
    expect(retry.status).toBeLessThan(300);
    expect(retry.body.update_id).not.toBe(first.update_id);
    w.proxy.availableUpdates = (id) => (id === dev.options.id ? consumed : null);
    try {
      expect((await dev.runCycle()).outcome).toMatchObject({ result: "failed", code: "MANIFEST_REPLAYED", updateId: first.update_id });
    } finally {
      w.proxy.availableUpdates = null;
    }
    expect(await dev.runCycle()).toMatchObject({ version: "1.1.5", lastBoot: "confirmed" });
    expect(await updateRecord(w, retry.body.update_id)).toMatchObject({ status: "completed" });
  });
});
