// OtaPort over the simulated esp_ota_* API: the agent drives exactly what it drives on a chip.
import type { AppDescription, ImageState, OtaPort, OtaWriter, Slot } from "../../device/core/ports";
import { OtaPortError } from "../../device/core/ports";
import { EspError } from "../esp/esp-err";
import type { EspOta, OtaHandle } from "../esp/esp-ota";
import { OTA_WITH_SEQUENTIAL_WRITES } from "../esp/esp-ota";
import { OtaImgState } from "../esp/otadata";
import type { Partition } from "../esp/partition-table";
import type { NorFlash } from "../flash/nor-flash";

const STATE_NAMES: Record<number, ImageState> = {
  [OtaImgState.NEW]: "new",
  [OtaImgState.PENDING_VERIFY]: "pending_verify",
  [OtaImgState.VALID]: "valid",
  [OtaImgState.INVALID]: "invalid",
  [OtaImgState.ABORTED]: "aborted",
  [OtaImgState.UNDEFINED]: "undefined",
};

export class SimOtaPort implements OtaPort {
  readonly chipId = 0;

  constructor(private readonly esp: EspOta, private readonly flash: NorFlash) {}

  running(): Slot {
    const p = this.esp.getRunningPartition();
    if (!p) throw new OtaPortError("ESP_ERR_NOT_FOUND", "no running partition");
    return toSlot(p);
  }

  nextUpdate(): Slot | null {
    const p = this.esp.getNextUpdatePartition();
    return p ? toSlot(p) : null;
  }

  other(): Slot | null {
    const running = this.esp.getRunningPartition();
    const p = this.esp.otaSlots.find((s) => s.offset !== running?.offset);
    return p ? toSlot(p) : null;
  }

  state(slot: Slot): ImageState {
    try {
      return STATE_NAMES[this.esp.getStatePartition(this.partition(slot))] ?? "undefined";
    } catch (e) {
      if (e instanceof EspError && e.espName === "ESP_ERR_NOT_FOUND") return "none";
      throw e;
    }
  }

  description(slot: Slot): AppDescription | null {
    try {
      const d = this.esp.getPartitionDescription(this.partition(slot));
      return { version: d.version, projectName: d.projectName, secureVersion: d.secureVersion, idfVersion: d.idfVer };
    } catch (e) {
      if (e instanceof EspError) return null;
      throw e;
    }
  }

  read(slot: Slot, offset: number, into: Uint8Array) {
    const p = this.partition(slot);
    if (offset < 0 || offset + into.length > p.size) throw new OtaPortError("ESP_ERR_INVALID_SIZE", `read past the end of ${p.name}`);
    into.set(this.flash.read(p.offset + offset, into.length));
  }

  begin(slot: Slot, _imageSize: number): OtaWriter {
    // Sequential writes (lazy erase), as Moddable's OTA and esp_https_ota use by default.
    return this.writer(() => this.esp.begin(this.partition(slot), OTA_WITH_SEQUENTIAL_WRITES));
  }

  resume(slot: Slot, offset: number): OtaWriter {
    if (offset % 4096 !== 0) throw new OtaPortError("ESP_ERR_INVALID_ARG", `resume offset ${offset} is not sector aligned`);
    return this.writer(() => this.esp.resume(this.partition(slot), OTA_WITH_SEQUENTIAL_WRITES, offset));
  }

  setBoot(slot: Slot) {
    wrap(() => this.esp.setBootPartition(this.partition(slot)));
  }

  markValid() {
    wrap(() => this.esp.markAppValidCancelRollback());
  }

  markInvalid() {
    wrap(() => this.esp.markAppInvalidRollback());
  }

  rollbackPossible(): boolean {
    return this.esp.checkRollbackIsPossible();
  }

  private writer(open: () => OtaHandle): OtaWriter {
    const h = wrap(open);
    const esp = this.esp;
    return {
      get written() {
        return h.wroteSize;
      },
      write: (bytes) => wrap(() => esp.write(h, bytes)),
      end: () => void wrap(() => esp.end(h)),
      abort: () => {
        try {
          esp.abort(h);
        } catch {
          // already closed by end()
        }
      },
    };
  }

  private partition(slot: Slot): Partition {
    const p = this.esp.otaSlots.find((s) => s.name === slot.label);
    if (!p) throw new OtaPortError("ESP_ERR_NOT_FOUND", `no app partition ${slot.label}`);
    return p;
  }
}

function toSlot(p: Partition): Slot {
  return { label: p.name, subtype: p.subtype, size: p.size };
}

/** ESP-IDF errors become OtaPortError; power cuts and flash contract violations pass through untouched. */
function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof EspError) throw new OtaPortError(e.espName, e.message);
    throw e;
  }
}
