// ESP-IDF error codes (esp_err.h, esp_ota_ops.h, esp_image_format.h) used by the simulated esp_ota_* API.
export const EspErr = {
  ESP_FAIL: -1,
  ESP_ERR_NO_MEM: 0x101,
  ESP_ERR_INVALID_ARG: 0x102,
  ESP_ERR_INVALID_STATE: 0x103,
  ESP_ERR_INVALID_SIZE: 0x104,
  ESP_ERR_NOT_FOUND: 0x105,
  ESP_ERR_NOT_SUPPORTED: 0x106,
  ESP_ERR_NOT_ALLOWED: 0x10d,
  ESP_ERR_IMAGE_INVALID: 0x2002,
  ESP_ERR_OTA_PARTITION_CONFLICT: 0x1501,
  ESP_ERR_OTA_SELECT_INFO_INVALID: 0x1502,
  ESP_ERR_OTA_VALIDATE_FAILED: 0x1503,
  ESP_ERR_OTA_SMALL_SEC_VER: 0x1504,
  ESP_ERR_OTA_ROLLBACK_FAILED: 0x1505,
  ESP_ERR_OTA_ROLLBACK_INVALID_STATE: 0x1506,
} as const;
export type EspErrName = keyof typeof EspErr;

/** An esp_err_t other than ESP_OK, carried as an exception: `.name` is the ESP-IDF name, `.code` its value. */
export class EspError extends Error {
  readonly code: number;
  constructor(readonly espName: EspErrName, detail: string) {
    super(`${espName}: ${detail}`);
    this.name = "EspError";
    this.code = EspErr[espName];
  }
}
