// The host's side of the native espota module (device/esp32/native/espota.c) for the XS adapter run: each
// function does what its C twin does — the same argument checks, the same esp_ota_* call — on the simulator's
// esp_ota model, and fails as throwEsp does: an Error "ESP_ERR_X (0x...)". Plus embedded:storage/flash's
// partition access (flash-esp32.c) on the same flash.
import type { HealthPort } from "../../device/core/ports";
import { EspError } from "../esp/esp-err";
import { EspErr } from "../esp/esp-err";
import type { EspErrName } from "../esp/esp-err";
import type { EspOta, OtaHandle } from "../esp/esp-ota";
import { OTA_WITH_SEQUENTIAL_WRITES } from "../esp/esp-ota";
import { OtaImgState } from "../esp/otadata";
import type { Partition } from "../esp/partition-table";
import { PartitionType } from "../esp/partition-table";

const FIRST_OTA = 0x10;
const LAST_OTA = 0x1f;
const STATES: Record<number, string> = {
  [OtaImgState.NEW]: "new",
  [OtaImgState.PENDING_VERIFY]: "pending_verify",
  [OtaImgState.VALID]: "valid",
  [OtaImgState.INVALID]: "invalid",
  [OtaImgState.ABORTED]: "aborted",
};

/** throwEsp: xsUnknownError("%s (0x%x)", esp_err_to_name(err), (unsigned)err). */
function espFailure(name: EspErrName, detail = ""): Error {
  const code = EspErr[name] >>> 0;
  return new Error(`${name} (0x${code.toString(16)})${detail ? `: ${detail}` : ""}`);
}

/** Runs one esp_ota_* call; its esp_err_t comes back as throwEsp's error. Power cuts pass through untouched. */
function idf<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof EspError) throw espFailure(e.espName, e.message);
    throw e;
  }
}

export interface NativeHost {
  esp: EspOta;
  health: HealthPort;
  /** esp_restart(): the simulated device records the restart. */
  restart(): void;
}

export function espotaFunctions(host: NativeHost) {
  const { esp } = host;
  let handle: OtaHandle | null = null;
  const appPartition = (label: unknown): Partition => {
    const p = esp.partitions.find((q) => q.type === PartitionType.app && q.name === String(label));
    if (!p) throw espFailure("ESP_ERR_NOT_FOUND");
    return p;
  };
  const isOtaSlot = (p: Partition) => p.type === PartitionType.app && p.subtype >= FIRST_OTA && p.subtype <= LAST_OTA;
  const writableSlot = (label: unknown): Partition => {
    const p = appPartition(label);
    const running = esp.getRunningPartition();
    if (!isOtaSlot(p)) throw espFailure("ESP_ERR_INVALID_ARG");
    if (!running || running.offset === p.offset) throw espFailure("ESP_ERR_OTA_PARTITION_CONFLICT");
    return p;
  };
  const dropHandle = () => {
    if (handle) esp.abort(handle);
    handle = null;
  };
  const requireHandle = (): OtaHandle => {
    if (!handle) throw espFailure("ESP_ERR_INVALID_STATE");
    return handle;
  };
  const fns: Record<string, (...args: any[]) => unknown> = {
    chipId: () => 0, // CONFIG_IDF_FIRMWARE_CHIP_ID of the ESP32
    running: () => esp.getRunningPartition()?.name,
    boot: () => esp.getBootPartition()?.name,
    next: () => esp.getNextUpdatePartition()?.name,
    label: (subtype: number) => {
      if (subtype < 0 || subtype > 0xff) throw espFailure("ESP_ERR_INVALID_ARG");
      return esp.partitions.find((p) => p.type === PartitionType.app && p.subtype === subtype)?.name;
    },
    subtype: (label: string) => appPartition(label).subtype,
    size: (label: string) => appPartition(label).size,
    state: (label: string) => {
      const p = appPartition(label);
      try {
        return STATES[esp.getStatePartition(p)] ?? "undefined";
      } catch (e) {
        if (e instanceof EspError && e.espName === "ESP_ERR_NOT_FOUND") return "none";
        throw e instanceof EspError ? espFailure(e.espName, e.message) : e;
      }
    },
    description: (label: string) => {
      const p = appPartition(label);
      try {
        const d = esp.getPartitionDescription(p);
        return [d.version, d.projectName, d.secureVersion, d.idfVer];
      } catch (e) {
        if (e instanceof EspError && e.espName === "ESP_ERR_NOT_FOUND") return undefined;
        throw e instanceof EspError ? espFailure(e.espName, e.message) : e;
      }
    },
    begin: (label: string, imageSize: number) => {
      const p = writableSlot(label);
      if (imageSize <= 0 || imageSize > p.size) throw espFailure("ESP_ERR_INVALID_SIZE");
      dropHandle();
      handle = idf(() => esp.begin(p, OTA_WITH_SEQUENTIAL_WRITES));
    },
    resume: (label: string, offset: number) => {
      const p = writableSlot(label);
      if (offset <= 0 || offset > p.size || offset % 4096 !== 0) throw espFailure("ESP_ERR_INVALID_ARG");
      dropHandle();
      handle = idf(() => esp.resume(p, OTA_WITH_SEQUENTIAL_WRITES, offset));
    },
    end: () => {
      const h = requireHandle();
      handle = null;
      idf(() => esp.end(h));
    },
    abort: () => dropHandle(),
    setBoot: (label: string) => {
      const p = appPartition(label);
      if (!isOtaSlot(p)) throw espFailure("ESP_ERR_INVALID_ARG");
      idf(() => esp.setBootPartition(p));
    },
    markValid: () => idf(() => esp.markAppValidCancelRollback()),
    markInvalid: () => idf(() => esp.markAppInvalidRollback()),
    markInvalidAndReboot: () => {
      idf(() => esp.markAppInvalidRollback());
      host.restart();
      throw espFailure("ESP_FAIL", "esp_restart returned (simulated chip)");
    },
    rollbackPossible: () => esp.checkRollbackIsPossible(),
    restart: () => host.restart(),
    resetReason: () => host.health.resetReason(),
    // esp_core_dump_get_summary on the simulated chip: what its last crash left (espota.c's array form).
    coredumpSummary: () => {
      const s = host.health.coredump?.();
      return s ? [s.task, s.pc, s.cause ?? 0, s.backtrace, s.backtrace_corrupted] : undefined;
    },
    uptimeMs: () => host.health.uptimeMs(),
    freeHeap: () => host.health.freeHeap(),
    minFreeHeap: () => host.health.minFreeHeap(),
  };
  return {
    call(name: string, args: unknown[]): unknown {
      const fn = fns[name];
      if (!fn) throw new Error(`espota has no function ${name}`);
      return fn(...args) ?? null;
    },
    read(label: string, offset: number, length: number): Uint8Array {
      const p = appPartition(label);
      if (offset < 0 || offset + length > p.size) throw espFailure("ESP_ERR_INVALID_SIZE");
      return esp.flash.read(p.offset + offset, length);
    },
    write(bytes: Uint8Array): void {
      const h = requireHandle();
      idf(() => esp.write(h, bytes));
    },
  };
}

/** flash-esp32.c: esp_partition_find_first(DATA, ANY, label), reads, writes and erases inside it. */
export function flashFunctions(esp: EspOta) {
  const partition = (label: string): Partition => {
    const p = esp.partitions.find((q) => q.type === PartitionType.data && q.name === label);
    if (!p) throw new Error("can't find partition");
    return p;
  };
  const inside = (p: Partition, offset: number, length: number, what: string) => {
    if (offset < 0 || length < 0 || offset + length > p.size) throw new Error(`${what} failed`); // esp_partition_* refuse
  };
  return {
    open: (label: string): [number, number] => [partition(label).size, 4096],
    read(label: string, offset: number, length: number): Uint8Array {
      const p = partition(label);
      inside(p, offset, length, "read");
      return esp.flash.read(p.offset + offset, length);
    },
    write(label: string, offset: number, bytes: Uint8Array): void {
      const p = partition(label);
      inside(p, offset, bytes.length, "write");
      esp.flash.write(p.offset + offset, bytes);
    },
    erase(label: string, offset: number, length: number): void {
      const p = partition(label);
      if (offset % 4096 !== 0 || length % 4096 !== 0) throw new Error("erase failed");
      inside(p, offset, length, "erase");
      esp.flash.eraseRange(p.offset + offset, length);
    },
  };
}
