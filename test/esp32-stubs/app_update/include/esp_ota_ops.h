/* Stub: ESP-IDF v6.0 esp_ota_ops.h, esp_app_desc.h and the otadata states (esp_flash_partitions.h). */
#ifndef STUB_ESP_OTA_OPS_H
#define STUB_ESP_OTA_OPS_H
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include "esp_err.h"
#include "esp_partition.h"

#define OTA_SIZE_UNKNOWN 0xffffffff
#define OTA_WITH_SEQUENTIAL_WRITES 0xfffffffe
#define ESP_ERR_OTA_BASE 0x1500
#define ESP_ERR_OTA_PARTITION_CONFLICT (ESP_ERR_OTA_BASE + 0x01)

typedef uint32_t esp_ota_handle_t;

typedef enum {
	ESP_OTA_IMG_NEW = 0x0U,
	ESP_OTA_IMG_PENDING_VERIFY = 0x1U,
	ESP_OTA_IMG_VALID = 0x2U,
	ESP_OTA_IMG_INVALID = 0x3U,
	ESP_OTA_IMG_ABORTED = 0x4U,
	ESP_OTA_IMG_UNDEFINED = 0xFFFFFFFFU,
} esp_ota_img_states_t;

typedef struct {
	uint32_t magic_word;
	uint32_t secure_version;
	uint32_t reserv1[2];
	char version[32];
	char project_name[32];
	char time[16];
	char date[16];
	char idf_ver[32];
	uint8_t app_elf_sha256[32];
	uint16_t min_efuse_blk_rev_full;
	uint16_t max_efuse_blk_rev_full;
	uint8_t mmu_page_size;
	uint8_t reserv3[3];
	uint32_t reserv2[18];
} esp_app_desc_t;

esp_err_t esp_ota_begin(const esp_partition_t *partition, size_t image_size, esp_ota_handle_t *out_handle);
esp_err_t esp_ota_resume(const esp_partition_t *partition, const size_t erase_size, const size_t image_offset, esp_ota_handle_t *out_handle);
esp_err_t esp_ota_write(esp_ota_handle_t handle, const void *data, size_t size);
esp_err_t esp_ota_end(esp_ota_handle_t handle);
esp_err_t esp_ota_abort(esp_ota_handle_t handle);
esp_err_t esp_ota_set_boot_partition(const esp_partition_t *partition);
const esp_partition_t *esp_ota_get_boot_partition(void);
const esp_partition_t *esp_ota_get_running_partition(void);
const esp_partition_t *esp_ota_get_next_update_partition(const esp_partition_t *start_from);
esp_err_t esp_ota_get_partition_description(const esp_partition_t *partition, esp_app_desc_t *app_desc);
esp_err_t esp_ota_get_state_partition(const esp_partition_t *partition, esp_ota_img_states_t *ota_state);
esp_err_t esp_ota_mark_app_valid_cancel_rollback(void);
esp_err_t esp_ota_mark_app_invalid_rollback(void);
esp_err_t esp_ota_mark_app_invalid_rollback_and_reboot(void);
bool esp_ota_check_rollback_is_possible(void);
#endif
