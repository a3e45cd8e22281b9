// OtaPort on ESP-IDF's esp_ota_* through our native module (Moddable's `ota` and `embedded:update` cannot
// resume a half-written slot, confirm or reject an image, or read image states).
import EspOta from "./native/espota";
import { OtaPortError, type AppDescription, type ImageState, type OtaPort, type OtaWriter, type Slot } from "../core/ports";

const SECTOR = 4096;
const OTA_FIRST = 0x10;
const OTA_LAST = 0x1f;

// Fallback names: Moddable's base sdkconfig turns CONFIG_ESP_ERR_TO_NAME_LOOKUP off ("UNKNOWN ERROR").
const ESP_NAMES: Record<number, string> = {
  [-1]: "ESP_FAIL",
  0x101: "ESP_ERR_NO_MEM",
  0x102: "ESP_ERR_INVALID_ARG",
  0x103: "ESP_ERR_INVALID_STATE",
  0x104: "ESP_ERR_INVALID_SIZE",
  0x105: "ESP_ERR_NOT_FOUND",
  0x106: "ESP_ERR_NOT_SUPPORTED",
  0x107: "ESP_ERR_TIMEOUT",
  0x1501: "ESP_ERR_OTA_PARTITION_CONFLICT",
  0x1502: "ESP_ERR_OTA_SELECT_INFO_INVALID",
  0x1503: "ESP_ERR_OTA_VALIDATE_FAILED",
  0x1504: "ESP_ERR_OTA_SMALL_SEC_VER",
  0x1505: "ESP_ERR_OTA_ROLLBACK_FAILED",
  0x1506: "ESP_ERR_OTA_ROLLBACK_INVALID_STATE",
  0x1507: "ESP_ERR_OTA_ALREADY_IN_PROGRESS",
  0x6001: "ESP_ERR_FLASH_OP_FAIL",
  0x6002: "ESP_ERR_FLASH_OP_TIMEOUT",
};

/** The ESP-IDF name in a native error message ("ESP_ERR_X (0x1503)" or "UNKNOWN ERROR (0x1503)"). */
export function espErrorName(message: string): string {
  const named = /^(ESP_[A-Z0-9_]+)/.exec(message);
  if (named) return named[1];
  const code = /\(0x([0-9a-f]+)\)/i.exec(message);
  if (code) {
    const n = parseInt(code[1], 16);
    return ESP_NAMES[n | 0] ?? ESP_NAMES[n] ?? `ESP_ERR_0x${n.toString(16)}`;
  }
  return "ESP_FAIL";
}

function esp<T>(what: string, call: () => T): T {
  try {
    return call();
  } catch (e) {
    if (e instanceof OtaPortError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    throw new OtaPortError(espErrorName(message), `${what}: ${message}`);
  }
}

function slotOf(label: string): Slot {
  return { label, subtype: EspOta.subtype(label), size: EspOta.size(label) };
}

export class EspOtaPort implements OtaPort {
  readonly chipId = EspOta.chipId();
  #writer: EspOtaWriter | undefined;

  running(): Slot {
    return esp("running", () => slotOf(EspOta.running()));
  }
  nextUpdate(): Slot | null {
    return esp("nextUpdate", () => {
      const label = EspOta.next();
      return label === undefined ? null : slotOf(label);
    });
  }
  other(): Slot | null {
    return esp("other", () => {
      const running = EspOta.running();
      const others: string[] = [];
      for (let subtype = OTA_FIRST; subtype <= OTA_LAST; subtype++) {
        const label = EspOta.label(subtype);
        if (label !== undefined && label !== running) others.push(label);
      }
      // With more than two OTA slots the rollback target is not unique; our partitions.csv has two.
      return others.length === 1 ? slotOf(others[0]) : null;
    });
  }
  state(slot: Slot): ImageState {
    return esp("state", () => EspOta.state(slot.label));
  }
  description(slot: Slot): AppDescription | null {
    return esp("description", () => {
      const d = EspOta.description(slot.label);
      return d ? { version: d[0], projectName: d[1], secureVersion: d[2], idfVersion: d[3] } : null;
    });
  }
  read(slot: Slot, offset: number, into: Uint8Array): void {
    esp("read", () => EspOta.read(slot.label, offset, into));
  }
  begin(slot: Slot, imageSize: number): OtaWriter {
    this.#refuseRunning(slot);
    if (!Number.isInteger(imageSize) || imageSize <= 0 || imageSize > slot.size)
      throw new OtaPortError("ESP_ERR_INVALID_SIZE", `begin: image of ${imageSize} bytes does not fit ${slot.label}`);
    this.#close();
    esp("esp_ota_begin", () => EspOta.begin(slot.label, imageSize));
    return (this.#writer = new EspOtaWriter(this, 0));
  }
  resume(slot: Slot, offset: number): OtaWriter {
    this.#refuseRunning(slot);
    // A sector-aligned offset makes the first write erase the sector it lands in, so bytes of a write torn
    // by a power cut are erased rather than programmed over.
    if (!Number.isInteger(offset) || offset <= 0 || offset % SECTOR !== 0 || offset > slot.size)
      throw new OtaPortError("ESP_ERR_INVALID_ARG", `resume: offset ${offset} is not a sector boundary inside ${slot.label}`);
    this.#close();
    esp("esp_ota_resume", () => EspOta.resume(slot.label, offset));
    return (this.#writer = new EspOtaWriter(this, offset));
  }
  setBoot(slot: Slot): void {
    esp("esp_ota_set_boot_partition", () => EspOta.setBoot(slot.label));
  }
  markValid(): void {
    esp("esp_ota_mark_app_valid_cancel_rollback", () => EspOta.markValid());
  }
  markInvalid(): void {
    esp("esp_ota_mark_app_invalid_rollback", () => EspOta.markInvalid());
  }
  rollbackPossible(): boolean {
    return esp("esp_ota_check_rollback_is_possible", () => EspOta.rollbackPossible());
  }

  /** Only the newest writer may touch the open esp_ota handle. */
  isCurrent(writer: EspOtaWriter): boolean {
    return this.#writer === writer;
  }
  released(writer: EspOtaWriter): void {
    if (this.#writer === writer) this.#writer = undefined;
  }
  #close(): void {
    this.#writer = undefined;
    EspOta.abort();
  }
  #refuseRunning(slot: Slot): void {
    if (slot.label === EspOta.running())
      throw new OtaPortError("ESP_ERR_OTA_PARTITION_CONFLICT", `${slot.label} is the running slot`);
  }
}

class EspOtaWriter implements OtaWriter {
  #port: EspOtaPort;
  #written: number;
  constructor(port: EspOtaPort, offset: number) {
    this.#port = port;
    this.#written = offset;
  }
  get written(): number {
    return this.#written;
  }
  write(bytes: Uint8Array): void {
    this.#check("esp_ota_write");
    esp("esp_ota_write", () => EspOta.write(bytes));
    this.#written += bytes.length;
  }
  end(): void {
    this.#check("esp_ota_end");
    this.#port.released(this);
    esp("esp_ota_end", () => EspOta.end());
  }
  abort(): void {
    if (!this.#port.isCurrent(this)) return;
    this.#port.released(this);
    EspOta.abort();
  }
  #check(what: string): void {
    if (!this.#port.isCurrent(this)) throw new OtaPortError("ESP_ERR_INVALID_STATE", `${what}: this update was closed`);
  }
}
