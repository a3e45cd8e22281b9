import { describe, expect, it } from "vitest";
import { programPartition, createDeviceFlash } from "../host-sim/device-flash";
import { runBootloader } from "../host-sim/esp/bootloader";
import { EspOta } from "../host-sim/esp/esp-ota";
import { makeEntry, Otadata, OtaImgState } from "../host-sim/esp/otadata";
import { findByName, PARTITION_TABLE_OFFSET } from "../host-sim/esp/partition-table";
import { boot, image, otadataSummary, part, twoOtaFlash, writeImage } from "./helpers/sim";

describe("reference trace A: factory + ota_0/ota_1, rollback enabled", () => {
  it("reproduces every step", () => {
    const flash = twoOtaFlash();
    const factoryOta = new EspOta(flash, { running: null });
    // The factory app is flashed by esptool; otadata stays blank.
    programPartition(flash, part(factoryOta, "factory"), image("0.9.0"));

    let b = boot(flash);
    expect([b.name, otadataSummary(flash, b.ota)]).toEqual(["factory", "both FF"]);

    writeImage(b.ota, part(b.ota, "ota_0"), image("1.0.0"));
    b.ota.setBootPartition(part(b.ota, "ota_0"));
    expect(otadataSummary(flash, b.ota)).toBe("[0] seq1 NEW");

    b = boot(flash);
    expect([b.name, otadataSummary(flash, b.ota)]).toEqual(["ota_0", "[0] seq1 PEND"]);

    b.ota.markAppValidCancelRollback();
    expect(otadataSummary(flash, b.ota)).toBe("[0] seq1 VALID");

    writeImage(b.ota, part(b.ota, "ota_1"), image("1.1.0"));
    b.ota.setBootPartition(part(b.ota, "ota_1"));
    expect(otadataSummary(flash, b.ota)).toBe("[0] seq1 VALID, [1] seq2 NEW");

    b = boot(flash);
    expect([b.name, b.version, otadataSummary(flash, b.ota)]).toEqual(["ota_1", "1.1.0", "[0] seq1 VALID, [1] seq2 PEND"]);

    // The new app never confirms: the next boot aborts it and falls back.
    b = boot(flash);
    expect([b.name, b.version, otadataSummary(flash, b.ota)]).toEqual(["ota_0", "1.0.0", "[0] seq1 VALID, [1] seq2 ABORTED"]);
  });
});

describe("reference trace B: no factory (our partitions.csv)", () => {
  it("initial write on blank otadata, then mark_invalid_and_reboot rolls back", () => {
    const flash = createDeviceFlash();
    const pre = new EspOta(flash, { running: null });
    programPartition(flash, part(pre, "ota_0"), image("1.0.0"));

    let b = boot(flash);
    expect([b.name, otadataSummary(flash, b.ota)]).toEqual(["ota_0", "[0] seq1 VALID"]);
    expect(b.result.log.join("\n")).toMatch(/No factory image, trying OTA 0/);

    writeImage(b.ota, part(b.ota, "ota_1"), image("1.1.0"));
    b.ota.setBootPartition(part(b.ota, "ota_1"));
    b = boot(flash);
    expect([b.name, otadataSummary(flash, b.ota)]).toEqual(["ota_1", "[0] seq1 VALID, [1] seq2 PEND"]);
    expect(b.ota.checkRollbackIsPossible()).toBe(true);
    b.ota.markAppInvalidRollback();
    b = boot(flash);
    expect([b.name, b.version, otadataSummary(flash, b.ota)]).toEqual(["ota_0", "1.0.0", "[0] seq1 VALID, [1] seq2 INVALID"]);
    expect(b.ota.getLastInvalidPartition()?.name).toBe("ota_1");
  });

  it("a third update from ota_1 (seq 2) computes seq 3 into sector 0", () => {
    const flash = createDeviceFlash();
    programPartition(flash, part(new EspOta(flash, { running: null }), "ota_0"), image("1.0.0"));
    let b = boot(flash);
    writeImage(b.ota, part(b.ota, "ota_1"), image("1.1.0"));
    b.ota.setBootPartition(part(b.ota, "ota_1"));
    b = boot(flash);
    b.ota.markAppValidCancelRollback();
    writeImage(b.ota, part(b.ota, "ota_0"), image("1.2.0"));
    b.ota.setBootPartition(part(b.ota, "ota_0"));
    expect(otadataSummary(flash, b.ota)).toBe("[0] seq3 NEW, [1] seq2 VALID");
    b = boot(flash);
    expect([b.name, b.version]).toEqual(["ota_0", "1.2.0"]);
  });
});

describe("bootloader fallback", () => {
  it("falls back past a corrupt selected image without touching otadata", () => {
    const flash = createDeviceFlash();
    programPartition(flash, part(new EspOta(flash, { running: null }), "ota_0"), image("1.0.0"));
    let b = boot(flash);
    const ota1 = part(b.ota, "ota_1");
    writeImage(b.ota, ota1, image("1.1.0"));
    b.ota.setBootPartition(ota1);
    // Corrupt a byte in the middle of ota_1's image behind the app's back (bit rot).
    const at = ota1.offset + 0x4000;
    const old = flash.read(at, 1)[0]!;
    flash.eraseSector(at);
    const sector = image("1.1.0").slice(0x4000, 0x5000);
    sector[0] = old ^ 0x01;
    flash.write(at, sector);
    b = boot(flash);
    expect([b.name, b.version]).toEqual(["ota_0", "1.0.0"]);
    expect(b.result.log.join("\n")).toMatch(/ota_1 app partition is not bootable/);
    expect(otadataSummary(flash, b.ota)).toBe("[0] seq1 VALID, [1] seq2 PEND");
  });

  it("boots nothing when no slot holds a valid image (a brick, reported as such)", () => {
    const flash = createDeviceFlash();
    const r = runBootloader(flash);
    expect(r.partition).toBeNull();
    expect(r.log.at(-1)).toMatch(/No bootable app/);
  });

  it("refuses a corrupt partition table", () => {
    const flash = createDeviceFlash();
    flash.eraseSector(PARTITION_TABLE_OFFSET);
    expect(runBootloader(flash).partition).toBeNull();
  });

  it("with both entries INVALID/ABORTED and no factory, still tries ota_0 first (last resort)", () => {
    const flash = createDeviceFlash();
    const pre = new EspOta(flash, { running: null });
    programPartition(flash, part(pre, "ota_0"), image("1.0.0"));
    programPartition(flash, part(pre, "ota_1"), image("1.1.0"));
    const od = new Otadata(flash, pre.otadata!.partition);
    od.writeCopy(0, makeEntry(1, OtaImgState.INVALID));
    od.writeCopy(1, makeEntry(2, OtaImgState.ABORTED));
    const b = boot(flash);
    expect(b.name).toBe("ota_0");
    // Not blank (CRCs are good), so no initial write happens.
    expect(otadataSummary(flash, b.ota)).toBe("[0] seq1 INVALID, [1] seq2 ABORTED");
  });

  it("with rollback disabled, set_boot writes UNDEFINED and boots stay unlimited", () => {
    const flash = createDeviceFlash();
    programPartition(flash, part(new EspOta(flash, { running: null }), "ota_0"), image("1.0.0"));
    let b = boot(flash, false);
    writeImage(b.ota, part(b.ota, "ota_1"), image("1.1.0"));
    b.ota.setBootPartition(part(b.ota, "ota_1"));
    expect(otadataSummary(flash, b.ota)).toBe(`[0] seq1 VALID, [1] seq2 UNDEFINED`);
    for (let i = 0; i < 3; i++) {
      b = boot(flash, false);
      expect(b.name).toBe("ota_1");
    }
    expect(otadataSummary(flash, b.ota)).toBe(`[0] seq1 VALID, [1] seq2 UNDEFINED`);
  });

  it("a dry run decides without writing", () => {
    const flash = createDeviceFlash();
    programPartition(flash, part(new EspOta(flash, { running: null }), "ota_0"), image("1.0.0"));
    const writes = flash.stats.writes;
    const r = runBootloader(flash, { dryRun: true });
    expect(r.partition?.name).toBe("ota_0");
    expect(flash.stats.writes).toBe(writes);
    expect(findByName(new EspOta(flash, { running: null }).partitions, "otadata")).toBeDefined();
  });
});
