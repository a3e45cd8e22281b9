/*
 * The bench's stand-in flash: one file (BENCH_FLASH) that scripts/bench-moddable.mjs lays out, read and written
 * with pread/pwrite so the images never enter the XS machine (on the chip they stay in flash too).
 *   [0, 4096)            header: "OTABENCH", u32 slot size, u32 agent size, u8 boot slot, u8 state[2], u8 reset
 *   [4096, +slot)        ota_0          [4096 + slot, +slot)  ota_1          then the `agent` data partition
 */
#ifndef __BENCH_FLASH_H__
#define __BENCH_FLASH_H__

#include <stdint.h>
#include <stddef.h>

#define kBenchSector 4096

enum { kStateNone = 0, kStateNew, kStatePendingVerify, kStateValid, kStateInvalid, kStateAborted, kStateUndefined };
enum { kResetPowerOn = 0, kResetSoftware = 1 };

typedef struct {
	int fd;
	uint32_t slotSize;
	uint32_t agentSize;
	uint8_t boot;
	uint8_t state[2];
	uint8_t reset;
	uint8_t running;
} BenchFlash;

/* Opens the file once and runs the bootloader's decision (new -> pending_verify; pending_verify -> aborted and the other slot). */
BenchFlash *benchFlash(void);
void benchFlashSave(BenchFlash *flash);
size_t benchFlashSlotOffset(BenchFlash *flash, int slot);
size_t benchFlashAgentOffset(BenchFlash *flash);
/* 0 on success; -1 on an I/O error. */
int benchFlashRead(BenchFlash *flash, size_t offset, void *data, size_t length);
int benchFlashWrite(BenchFlash *flash, size_t offset, const void *data, size_t length);
int benchFlashErase(BenchFlash *flash, size_t offset, size_t length);

#endif
