// Types of espota.js (host functions in espota.c). Every call that reaches ESP-IDF may throw an Error whose
// message starts with the ESP-IDF error name, e.g. "ESP_ERR_OTA_VALIDATE_FAILED (0x1503)".

export type EspImageState = "new" | "pending_verify" | "valid" | "invalid" | "aborted" | "undefined" | "none";

/** [version, projectName, secureVersion, idfVersion] from esp_app_desc_t. */
export type EspAppDescription = [version: string, projectName: string, secureVersion: number, idfVersion: string];

/** [exc_task, exc_pc, exception cause, exc_bt_info.bt[0..depth), exc_bt_info.corrupted] */
export type EspCoredumpSummary = [task: string, pc: number, cause: number, backtrace: number[], backtraceCorrupted: boolean];

export default class EspOta {
  private constructor();
  /** CONFIG_IDF_FIRMWARE_CHIP_ID (esp_image_header_t.chip_id; 0 = ESP32). */
  static chipId(): number;
  /** Label of esp_ota_get_running_partition(). */
  static running(): string;
  /** Label of esp_ota_get_boot_partition(), if any. */
  static boot(): string | undefined;
  /** Label of esp_ota_get_next_update_partition(NULL), if any. */
  static next(): string | undefined;
  /** Label of the app partition with this subtype (0x10 + n for ota_n), if the table has one. */
  static label(subtype: number): string | undefined;
  static subtype(label: string): number;
  static size(label: string): number;
  /** esp_ota_get_state_partition; "none" when otadata has no entry for the slot. */
  static state(label: string): EspImageState;
  /** esp_ota_get_partition_description; undefined when the slot holds no app description. */
  static description(label: string): EspAppDescription | undefined;
  /** esp_partition_read into the whole buffer. */
  static read(label: string, offset: number, buffer: ArrayBuffer | Uint8Array): void;
  /** esp_ota_begin(OTA_WITH_SEQUENTIAL_WRITES); refuses the running slot. Aborts any open update first. */
  static begin(label: string, imageSize: number): void;
  /** esp_ota_resume at a sector-aligned offset > 0; refuses the running slot. Aborts any open update first. */
  static resume(label: string, offset: number): void;
  /** esp_ota_write on the open update. */
  static write(buffer: ArrayBuffer | Uint8Array): void;
  /** esp_ota_end (verifies the image); the update is closed whatever the result. */
  static end(): void;
  /** esp_ota_abort of the open update, if any. Never throws. */
  static abort(): void;
  static setBoot(label: string): void;
  /** esp_ota_mark_app_valid_cancel_rollback */
  static markValid(): void;
  /** esp_ota_mark_app_invalid_rollback (no reboot) */
  static markInvalid(): void;
  /** esp_ota_mark_app_invalid_rollback_and_reboot; returns only by throwing. */
  static markInvalidAndReboot(): never;
  static rollbackPossible(): boolean;
  /** esp_restart */
  static restart(): never;
  /** esp_reset_reason(), named as device/protocol/health.ts RESET_REASONS. */
  static resetReason(): string;
  /** esp_core_dump_get_summary() of a core dump in flash that passes esp_core_dump_image_check(); undefined without
   * one (or with core dumps to flash off). */
  static coredumpSummary(): EspCoredumpSummary | undefined;
  /** esp_timer_get_time() / 1000: milliseconds since boot. */
  static uptimeMs(): number;
  /** esp_get_free_heap_size(): the ESP-IDF heap (XS's own heap is inside it). */
  static freeHeap(): number;
  /** esp_get_minimum_free_heap_size(): the low-water mark since boot. */
  static minFreeHeap(): number;
}
