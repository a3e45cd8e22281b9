/* Stub: the generated sdkconfig.h values espota.c reads. */
#define CONFIG_IDF_FIRMWARE_CHIP_ID 0x0000
/* Core dump to flash on (so the syntax check covers espota.c's summary path), Xtensa (the ESP32). */
#define CONFIG_ESP_COREDUMP_ENABLE_TO_FLASH 1
#define CONFIG_IDF_TARGET_ARCH_XTENSA 1
