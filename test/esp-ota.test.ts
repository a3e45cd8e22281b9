import { describe, expect, it } from "vitest";
import { createDeviceFlash, programPartition } from "../host-sim/device-flash";
import { EspError } from "../host-sim/esp/esp-err";
import { EspOta, OTA_SIZE_UNKNOWN, OTA_WITH_SEQUENTIAL_WRITES } from "../host-sim/esp/esp-ota";
import { OtaImgState } from "../host-sim/esp/otadata";
import { boot, image, otadataSummary, part, twoOtaFlash, writeImage } from "./helpers/sim";

function espCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof EspError) return e.espName;
    throw e;
  }
  return "ESP_OK";
}

/** A device on v1.0.0 in ota_0, booted and confirmed. */
function runningDevice() {
  const flash = createDeviceFlash();
  programPartition(flash, part(new EspOta(flash, { running: null }), "ota_0"), image("1.0.0"));
  return { flash, ...boot(flash) };
}

describe("esp_ota_begin", () => {
  it("refuses the running partition (PARTITION_CONFLICT) and non-OTA targets (INVALID_ARG)", () => {
    const d = runningDevice();
    expect(espCode(() => d.ota.begin(part(d.ota, "ota_0"), OTA_SIZE_UNKNOWN))).toBe("ESP_ERR_OTA_PARTITION_CONFLICT");
    expect(espCode(() => d.ota.begin(part(d.ota, "nvs"), OTA_SIZE_UNKNOWN))).toBe("ESP_ERR_INVALID_ARG");
  });

  it("refuses while the running image is PENDING_VERIFY (ROLLBACK_INVALID_STATE)", () => {
    const d = runningDevice();
    writeImage(d.ota, part(d.ota, "ota_1"), image("1.1.0"));
    d.ota.setBootPartition(part(d.ota, "ota_1"));
    const b = boot(d.flash);
    expect(b.ota.getStatePartition(part(b.ota, "ota_1"))).toBe(OtaImgState.PENDING_VERIFY);
    expect(espCode(() => b.ota.begin(part(b.ota, "ota_0"), OTA_SIZE_UNKNOWN))).toBe("ESP_ERR_OTA_ROLLBACK_INVALID_STATE");
    b.ota.markAppValidCancelRollback();
    expect(espCode(() => b.ota.begin(part(b.ota, "ota_0"), OTA_SIZE_UNKNOWN))).toBe("ESP_OK");
  });

  it("erases the whole slot for OTA_SIZE_UNKNOWN, ALIGN_UP(size) for a size, nothing up front for sequential writes", () => {
    const d = runningDevice();
    const ota1 = part(d.ota, "ota_1");
    let e = d.flash.stats.erases;
    d.ota.begin(ota1, OTA_SIZE_UNKNOWN);
    expect(d.flash.stats.erases - e).toBe(ota1.size / 0x1000);
    e = d.flash.stats.erases;
    d.ota.begin(ota1, 5000);
    expect(d.flash.stats.erases - e).toBe(2);
    e = d.flash.stats.erases;
    d.ota.begin(ota1, OTA_WITH_SEQUENTIAL_WRITES);
    expect(d.flash.stats.erases - e).toBe(0);
    expect(espCode(() => d.ota.begin(ota1, ota1.size + 1))).toBe("ESP_ERR_INVALID_SIZE");
  });

  it("v5.5+: forgets the inactive otadata entry that points at the slot about to be overwritten", () => {
    const d = runningDevice();
    writeImage(d.ota, part(d.ota, "ota_1"), image("1.1.0"));
    d.ota.setBootPartition(part(d.ota, "ota_1"));
    const b = boot(d.flash);
    b.ota.markAppValidCancelRollback();
    expect(otadataSummary(d.flash, b.ota)).toBe("[0] seq1 VALID, [1] seq2 VALID");
    b.ota.begin(part(b.ota, "ota_0"), OTA_WITH_SEQUENTIAL_WRITES);
    expect(otadataSummary(d.flash, b.ota)).toBe("[1] seq2 VALID");
    expect(b.ota.checkRollbackIsPossible()).toBe(false);
  });
});

describe("esp_ota_write / end", () => {
  it("requires 0xE9 as the very first byte", () => {
    const d = runningDevice();
    const h = d.ota.begin(part(d.ota, "ota_1"), OTA_WITH_SEQUENTIAL_WRITES);
    expect(espCode(() => d.ota.write(h, new Uint8Array([0x00, 1, 2])))).toBe("ESP_ERR_OTA_VALIDATE_FAILED");
    d.ota.write(h, new Uint8Array([0xe9]));
    d.ota.write(h, new Uint8Array([0x00])); // later bytes are free
  });

  it("lazily erases each sector as sequential writes reach it, even with odd chunk sizes", () => {
    const d = runningDevice();
    const img = image("1.1.0");
    const before = d.flash.stats.erases;
    const info = writeImage(d.ota, part(d.ota, "ota_1"), img, 1000);
    expect(d.flash.stats.erases - before).toBe(Math.ceil(img.length / 0x1000));
    expect(info.appDesc?.version).toBe("1.1.0");
  });

  it("end verifies the whole image: a corrupt image is VALIDATE_FAILED and cannot be made bootable", () => {
    const d = runningDevice();
    const bad = image("1.1.0").slice();
    bad[bad.length - 40] ^= 0xff;
    const ota1 = part(d.ota, "ota_1");
    expect(espCode(() => writeImage(d.ota, ota1, bad))).toBe("ESP_ERR_OTA_VALIDATE_FAILED");
    expect(espCode(() => d.ota.setBootPartition(ota1))).toBe("ESP_ERR_OTA_VALIDATE_FAILED");
    expect(otadataSummary(d.flash, d.ota)).toBe("[0] seq1 VALID");
  });

  it("set_boot verifies again: bytes changed after esp_ota_end verified them are VALIDATE_FAILED", () => {
    const d = runningDevice();
    const good = image("1.1.0");
    const ota1 = part(d.ota, "ota_1");
    writeImage(d.ota, ota1, good);
    // Rewrite the image's last sector with one byte flipped (erase, then program), as a stray write would.
    const at = ota1.offset + ((good.length - 40) & ~4095);
    const sector = d.flash.read(at, 4096);
    sector[(good.length - 40) % 4096] ^= 0xff;
    d.flash.eraseSector(at);
    d.flash.write(at, sector);
    expect(espCode(() => d.ota.setBootPartition(ota1))).toBe("ESP_ERR_OTA_VALIDATE_FAILED");
    expect(otadataSummary(d.flash, d.ota)).toBe("[0] seq1 VALID");
  });

  it("end with nothing written is INVALID_ARG, and the handle is freed either way", () => {
    const d = runningDevice();
    const h = d.ota.begin(part(d.ota, "ota_1"), OTA_WITH_SEQUENTIAL_WRITES);
    expect(espCode(() => d.ota.end(h))).toBe("ESP_ERR_INVALID_ARG");
    expect(espCode(() => d.ota.write(h, new Uint8Array([0xe9])))).toBe("ESP_ERR_NOT_FOUND");
  });

  it("write_with_offset writes anywhere in a pre-erased slot", () => {
    const d = runningDevice();
    const img = image("1.1.0");
    const ota1 = part(d.ota, "ota_1");
    const h = d.ota.begin(ota1, img.length);
    const half = 0x3000;
    d.ota.writeWithOffset(h, img.subarray(half), half);
    d.ota.writeWithOffset(h, img.subarray(0, half), 0);
    expect(d.ota.end(h).appDesc?.version).toBe("1.1.0");
  });

  it("resume continues a half-written slot without erasing or re-checking the magic", () => {
    const d = runningDevice();
    const img = image("1.1.0");
    const ota1 = part(d.ota, "ota_1");
    const h = d.ota.begin(ota1, OTA_WITH_SEQUENTIAL_WRITES);
    d.ota.write(h, img.subarray(0, 0x2000));
    // A reboot: a new app instance resumes at the durable offset (sector aligned, so lazy erase starts clean).
    const again = new EspOta(d.flash, { running: part(d.ota, "ota_0") });
    const erases = d.flash.stats.erases;
    const r = again.resume(ota1, OTA_WITH_SEQUENTIAL_WRITES, 0x2000);
    expect(d.flash.stats.erases).toBe(erases);
    again.write(r, img.subarray(0x2000, 0x2001)); // 0x2000 is not 0xE9: no magic check after resume
    again.write(r, img.subarray(0x2001));
    expect(again.end(r).appDesc?.version).toBe("1.1.0");
    expect(espCode(() => again.resume(part(again, "ota_0"), 0, 0))).toBe("ESP_ERR_OTA_PARTITION_CONFLICT");
  });
});

describe("esp_ota_set_boot_partition seq arithmetic (v6.0)", () => {
  it("choosing the already-active slot keeps its seq and sector", () => {
    const d = runningDevice();
    d.ota.setBootPartition(part(d.ota, "ota_0"));
    expect(otadataSummary(d.flash, d.ota)).toBe("[0] seq1 NEW");
  });

  it("setting factory erases the whole of otadata", () => {
    const flash = twoOtaFlash();
    const pre = new EspOta(flash, { running: null });
    programPartition(flash, part(pre, "factory"), image("0.9.0"));
    writeImage(pre, part(pre, "ota_0"), image("1.0.0"));
    pre.setBootPartition(part(pre, "ota_0"));
    expect(boot(flash).name).toBe("ota_0");
    pre.setBootPartition(part(pre, "factory"));
    expect(otadataSummary(flash, pre)).toBe("both FF");
    expect(boot(flash).name).toBe("factory");
  });
});

describe("queries", () => {
  it("running, boot, next update partition, state and description", () => {
    const d = runningDevice();
    expect(d.ota.getRunningPartition()?.name).toBe("ota_0");
    expect(d.ota.getBootPartition()?.name).toBe("ota_0");
    expect(d.ota.getNextUpdatePartition()?.name).toBe("ota_1");
    expect(d.ota.getNextUpdatePartition(part(d.ota, "ota_1"))?.name).toBe("ota_0");
    expect(new EspOta(d.flash, { running: null }).getNextUpdatePartition()?.name).toBe("ota_0");
    expect(d.ota.getStatePartition(part(d.ota, "ota_0"))).toBe(OtaImgState.VALID);
    expect(espCode(() => d.ota.getStatePartition(part(d.ota, "ota_1")))).toBe("ESP_ERR_NOT_FOUND");
    expect(d.ota.getPartitionDescription(part(d.ota, "ota_0")).version).toBe("1.0.0");
    expect(espCode(() => d.ota.getPartitionDescription(part(d.ota, "ota_1")))).toBe("ESP_ERR_NOT_FOUND");
    expect(d.ota.checkRollbackIsPossible()).toBe(false);
  });

  it("mark_app_invalid_rollback refuses when there is nothing to roll back to", () => {
    const d = runningDevice();
    expect(espCode(() => d.ota.markAppInvalidRollback())).toBe("ESP_ERR_OTA_ROLLBACK_FAILED");
    expect(otadataSummary(d.flash, d.ota)).toBe("[0] seq1 VALID");
  });

  it("mark_app_valid on blank otadata is ESP_FAIL (running firmware is factory)", () => {
    const flash = createDeviceFlash();
    expect(espCode(() => new EspOta(flash, { running: null }).markAppValidCancelRollback())).toBe("ESP_FAIL");
  });

  it("erase_last_boot_app_partition erases the previous app and its otadata copy", () => {
    const d = runningDevice();
    writeImage(d.ota, part(d.ota, "ota_1"), image("1.1.0"));
    d.ota.setBootPartition(part(d.ota, "ota_1"));
    const b = boot(d.flash);
    b.ota.markAppValidCancelRollback();
    b.ota.eraseLastBootAppPartition();
    expect(otadataSummary(d.flash, b.ota)).toBe("[1] seq2 VALID");
    expect(d.flash.read(part(b.ota, "ota_0").offset, 1)[0]).toBe(0xff);
  });
});
