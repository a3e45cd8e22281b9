/* Stub: ESP-IDF esp_partition.h (the fields and calls espota.c uses). */
#ifndef STUB_ESP_PARTITION_H
#define STUB_ESP_PARTITION_H
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include "esp_err.h"

typedef enum { ESP_PARTITION_TYPE_APP = 0x00, ESP_PARTITION_TYPE_DATA = 0x01, ESP_PARTITION_TYPE_ANY = 0xff } esp_partition_type_t;
typedef enum { ESP_PARTITION_SUBTYPE_APP_FACTORY = 0x00, ESP_PARTITION_SUBTYPE_APP_OTA_MIN = 0x10, ESP_PARTITION_SUBTYPE_ANY = 0xff } esp_partition_subtype_t;

typedef struct {
	void *flash_chip;
	esp_partition_type_t type;
	esp_partition_subtype_t subtype;
	uint32_t address;
	uint32_t size;
	uint32_t erase_size;
	char label[17];
	bool encrypted;
	bool readonly;
} esp_partition_t;

const esp_partition_t *esp_partition_find_first(esp_partition_type_t type, esp_partition_subtype_t subtype, const char *label);
esp_err_t esp_partition_read(const esp_partition_t *partition, size_t src_offset, void *dst, size_t size);
#endif
