/* Stub: ESP-IDF esp_idf_version.h (v6.0 unless the compile line defines ESP_IDF_VERSION_MAJOR/MINOR/PATCH, as
 * test/esp32-native.test.ts does to check espota.c's fallback for an IDF without esp_ota_resume). */
#ifndef STUB_ESP_IDF_VERSION_H
#define STUB_ESP_IDF_VERSION_H
#ifndef ESP_IDF_VERSION_MAJOR
#define ESP_IDF_VERSION_MAJOR 6
#define ESP_IDF_VERSION_MINOR 0
#define ESP_IDF_VERSION_PATCH 0
#endif
#define ESP_IDF_VERSION_VAL(major, minor, patch) (((major) << 16) | ((minor) << 8) | (patch))
#define ESP_IDF_VERSION ESP_IDF_VERSION_VAL(ESP_IDF_VERSION_MAJOR, ESP_IDF_VERSION_MINOR, ESP_IDF_VERSION_PATCH)
#endif
