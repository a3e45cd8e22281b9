// Delta updates end to end, on Node and on XS: the real server builds a patch from the image a device runs,
// offers it in the signed manifest, and the agent rebuilds the new image from its running slot; the flash
// must then hold the new image byte for byte. A device on an image the server does not know gets the full
// image; a corrupted patch never becomes bootable.
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firmwarePath, ROUTES } from "../device/protocol/paths";
import { buildAppImage } from "../esp-image/app-image";
import { minorChange } from "../esp-image/minor-change";
import { programPartition } from "../host-sim/device-flash";
import type { AgentRuntime } from "../host-sim/device/sim-device";
import { loadPartitionTable } from "../host-sim/esp/esp-ota";
import { findByName } from "../host-sim/esp/partition-table";
import type { NorFlash } from "../host-sim/flash/nor-flash";
import type { World } from "./helpers/e2e";
import { assign, device, image, inspect, startWorld, updateRecord, upload } from "./helpers/e2e";
import { api, asAdmin } from "./server/harness";

const RUNTIMES: AgentRuntime[] = ["node", "xs"];

function slotBytes(flash: NorFlash, name: string, length: number): Uint8Array {
  const p = findByName(loadPartitionTable(flash), name)!;
  return flash.read(p.offset, length);
}

describe.each(RUNTIMES)("delta updates on %s", (runtime) => {
  let w: World;
  const base = image("1.0.0");
  const next = minorChange(base, "1.1.0", 1);
  const corrupt = minorChange(base, "1.2.0", 2);
  let nextId: string;
  let corruptId: string;
  beforeAll(async () => {
    w = await startWorld(runtime);
    await upload(w, "1.0.0", { bytes: base });
    nextId = await upload(w, "1.1.0", { bytes: next });
    corruptId = await upload(w, "1.2.0", { bytes: corrupt });
  });
  afterAll(async () => w?.close());

  it("a device on A updates to B by delta, confirms, and its flash holds B byte for byte", async () => {
    const fw = (await api(w.h, "GET", firmwarePath(nextId), asAdmin(w.h))).body;
    const patch = fw.deltas.find((d: { status: string }) => d.status === "ready");
    expect(patch).toMatchObject({ from_firmware_id: "fw_v1.0.0" });
    expect(patch.patch_size).toBeLessThan(0.25 * next.length);

    const { dev } = await device(w, `${runtime}-delta`);
    const { update_id } = await assign(w, dev.options.id, nextId);
    const r = await dev.runCycle();
    expect(r).toMatchObject({ bricked: false, slot: "ota_1", version: "1.1.0", lastBoot: "confirmed" });
    expect(Buffer.compare(slotBytes(dev.flash, "ota_1", next.length), next)).toBe(0);
    expect(dev.http.downloaded).toBe(patch.patch_size);
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "completed", delivery: "delta", bytes_saved: next.length - patch.patch_size });
    const stats = (await api(w.h, "GET", ROUTES.stats, asAdmin(w.h))).body;
    expect(stats.bytes_served_delta).toBeGreaterThanOrEqual(patch.patch_size);
    expect(stats.delta_bytes_saved).toBeGreaterThanOrEqual(next.length - patch.patch_size);
    expect((await api(w.h, "GET", firmwarePath(nextId), asAdmin(w.h))).body.delta_bytes_saved).toBe(next.length - patch.patch_size);
  });

  it("a device whose running image differs from every stored base gets the full image", async () => {
    const { dev } = await device(w, `${runtime}-unknown-base`);
    // Version 1.0.0 as well, but not the bytes the server stores.
    programPartition(dev.flash, findByName(loadPartitionTable(dev.flash), "ota_0")!, buildAppImage({ version: "1.0.0", size: 96 * 1024, seed: 99 }));
    const { update_id } = await assign(w, dev.options.id, nextId);
    const r = await dev.runCycle();
    expect(r).toMatchObject({ bricked: false, version: "1.1.0", lastBoot: "confirmed" });
    expect(dev.http.downloaded).toBe(next.length);
    expect(Buffer.compare(slotBytes(dev.flash, "ota_1", next.length), next)).toBe(0);
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "completed", delivery: "full", bytes_saved: 0 });
  });

  it("a corrupted patch is refused before the slot becomes bootable", async () => {
    const fw = (await api(w.h, "GET", firmwarePath(corruptId), asAdmin(w.h))).body;
    // The upload built patches from 1.0.0 and 1.1.0; the device runs 1.0.0.
    const patch = fw.deltas.find((d: { from_firmware_id: string }) => d.from_firmware_id === "fw_v1.0.0");
    const row = w.h.server.ctx.db.prepare("SELECT patch_sha256 FROM patches WHERE base_sha256 = ? AND target_sha256 = ?").get(patch.base_sha256, fw.checksum_sha256) as { patch_sha256: string };
    const path = w.h.server.ctx.blobs.pathFor(row.patch_sha256);
    const original = readFileSync(path);
    const damaged = Buffer.from(original);
    damaged[damaged.length - 40] ^= 0x5a; // a literal byte near the end: the patch still parses
    writeFileSync(path, damaged);
    try {
      const { dev } = await device(w, `${runtime}-corrupt`);
      const { update_id } = await assign(w, dev.options.id, corruptId);
      const r = await dev.runCycle();
      expect(r.outcome).toMatchObject({ result: "failed", code: "CHECKSUM_MISMATCH" });
      expect(dev.http.downloaded).toBe(patch.patch_size);
      expect(inspect(dev.flash)).toMatchObject({ bootSlot: "ota_0", otadata: ["seq1 VALID", "blank"], versions: { ota_0: "1.0.0" } });
      expect(await updateRecord(w, update_id)).toMatchObject({ status: "failed", error: { code: "CHECKSUM_MISMATCH" } });
    } finally {
      writeFileSync(path, original);
    }
  });
});
