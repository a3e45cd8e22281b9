// Cut power after (and during) every flash operation of the otadata-changing steps, and check that the
// bootloader still boots a verified image, old or new, each time.
import { describe, expect, it } from "vitest";
import { createDeviceFlash, programPartition } from "../host-sim/device-flash";
import { EspOta } from "../host-sim/esp/esp-ota";
import { runBootloader } from "../host-sim/esp/bootloader";
import { NorFlash, PowerCutError } from "../host-sim/flash/nor-flash";
import { boot, image, part, writeImage } from "./helpers/sim";

/** ota_0 runs v1.0.0 (confirmed); ota_1 holds a verified v1.1.0 that is not yet selected. */
function staged(): NorFlash {
  const flash = createDeviceFlash();
  programPartition(flash, part(new EspOta(flash, { running: null }), "ota_0"), image("1.0.0"));
  const b = boot(flash);
  writeImage(b.ota, part(b.ota, "ota_1"), image("1.1.0"));
  return flash;
}

/** Runs `step` on a copy of `base` with a fault at operation k; returns what the next power-on boots. */
function cutAt(base: NorFlash, step: (flash: NorFlash) => void, fault: { cutAfter: number } | { tear: { op: number } }) {
  const flash = NorFlash.memoryCopy(base);
  flash.armFaults(fault);
  let cut = false;
  try {
    step(flash);
  } catch (e) {
    if (!(e instanceof PowerCutError)) throw e;
    cut = true;
  }
  flash.powerOn();
  const r = runBootloader(flash);
  return { cut, booted: r.partition?.name ?? null, version: r.image?.appDesc?.version ?? null, r };
}

function countOps(base: NorFlash, step: (flash: NorFlash) => void): number {
  const flash = NorFlash.memoryCopy(base);
  const before = flash.opCount;
  step(flash);
  return flash.opCount - before;
}

function sweep(base: NorFlash, step: (flash: NorFlash) => void) {
  const n = countOps(base, step);
  const outcomes: string[] = [];
  for (let k = 1; k <= n; k++) {
    for (const fault of [{ cutAfter: k }, { tear: { op: k } }]) {
      const o = cutAt(base, step, fault);
      expect(o.cut, `fault ${JSON.stringify(fault)} must fire`).toBe(true);
      expect(o.booted, `fault ${JSON.stringify(fault)} bricked the device:\n${o.r.log.join("\n")}`).not.toBeNull();
      expect(["1.0.0", "1.1.0"]).toContain(o.version);
      outcomes.push(o.version!);
    }
  }
  return { n, outcomes };
}

const setBoot = (flash: NorFlash) => {
  const ota = new EspOta(flash, { running: null });
  ota.setBootPartition(part(ota, "ota_1"));
};

describe("power cut at every operation", () => {
  it("of esp_ota_set_boot_partition", () => {
    const { n, outcomes } = sweep(staged(), (flash) => {
      const ota = new EspOta(flash, { running: part(new EspOta(flash, { running: null }), "ota_0") });
      ota.setBootPartition(part(ota, "ota_1"));
    });
    expect(n).toBe(2); // erase one otadata sector, write 32 bytes
    // Cut after the final write: the switch took effect.
    expect(outcomes.at(-2)).toBe("1.1.0");
    expect(outcomes[0]).toBe("1.0.0");
  });

  it("of esp_ota_mark_app_valid_cancel_rollback", () => {
    const base = staged();
    setBoot(base);
    runBootloader(base); // now running ota_1 in PENDING_VERIFY
    const { n, outcomes } = sweep(base, (flash) => {
      const ota = new EspOta(flash, { running: part(new EspOta(flash, { running: null }), "ota_1") });
      ota.markAppValidCancelRollback();
    });
    expect(n).toBe(2);
    expect(outcomes.at(-2)).toBe("1.1.0");
  });

  it("of the bootloader's own otadata transitions (NEW → PENDING_VERIFY → ABORTED)", () => {
    const base = staged();
    setBoot(base);
    sweep(base, (flash) => {
      runBootloader(flash); // NEW → PENDING_VERIFY
      runBootloader(flash); // PENDING_VERIFY → ABORTED, fall back
    });
  });

  it("of a whole update: write, set boot, boot, confirm", () => {
    const flash = createDeviceFlash();
    programPartition(flash, part(new EspOta(flash, { running: null }), "ota_0"), image("1.0.0"));
    runBootloader(flash);
    const { n } = sweep(flash, (f) => {
      const ota0 = part(new EspOta(f, { running: null }), "ota_0");
      const ota = new EspOta(f, { running: ota0 });
      writeImage(ota, part(ota, "ota_1"), image("1.1.0"));
      ota.setBootPartition(part(ota, "ota_1"));
      const b = boot(f);
      b.ota.markAppValidCancelRollback();
    });
    expect(n).toBeGreaterThan(20);
  });
});
