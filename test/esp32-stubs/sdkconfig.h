/* Stub: the generated sdkconfig.h values espota.c reads. */
#define CONFIG_IDF_FIRMWARE_CHIP_ID 0x0000
