/*
 * The bench's stand-in flash file (bench-flash.h) and, over its `agent` partition, the host functions of
 * flash-lin.js (embedded:storage/flash). Bench-only: the ESP32 build uses Moddable's module on the chip's flash.
 */
#include "xsmc.h"
#include "bench-flash.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static BenchFlash gFlash = { .fd = -1 };

static uint32_t get32(const uint8_t *p)
{
	return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void bootloader(BenchFlash *flash)
{
	int boot = flash->boot, other = 1 - boot;
	if (kStateNew == flash->state[boot])
		flash->state[boot] = kStatePendingVerify;
	else if (kStatePendingVerify == flash->state[boot]) {
		// Booted once and never confirmed: ESP-IDF's bootloader aborts it and falls back.
		flash->state[boot] = kStateAborted;
		flash->boot = other;
	}
	else if ((kStateInvalid == flash->state[boot]) || (kStateAborted == flash->state[boot]))
		flash->boot = other;
	flash->running = flash->boot;
	benchFlashSave(flash);
}

BenchFlash *benchFlash(void)
{
	if (gFlash.fd >= 0)
		return &gFlash;
	const char *path = getenv("BENCH_FLASH");
	uint8_t header[20];
	if (!path || ((gFlash.fd = open(path, O_RDWR)) < 0)) {
		fprintf(stderr, "### bench flash: cannot open BENCH_FLASH (%s)\n", path ? path : "unset");
		exit(4);
	}
	if ((pread(gFlash.fd, header, sizeof(header), 0) != sizeof(header)) || memcmp(header, "OTABENCH", 8)) {
		fprintf(stderr, "### bench flash: %s has no OTABENCH header\n", path);
		exit(4);
	}
	gFlash.slotSize = get32(header + 8);
	gFlash.agentSize = get32(header + 12);
	gFlash.boot = header[16] & 1;
	gFlash.state[0] = header[17];
	gFlash.state[1] = header[18];
	gFlash.reset = header[19];
	bootloader(&gFlash);
	return &gFlash;
}

void benchFlashSave(BenchFlash *flash)
{
	uint8_t bytes[4] = { flash->boot, flash->state[0], flash->state[1], flash->reset };
	if ((pwrite(flash->fd, bytes, 4, 16) != 4) || fsync(flash->fd)) {
		fprintf(stderr, "### bench flash: header write failed\n");
		exit(4);
	}
}

size_t benchFlashSlotOffset(BenchFlash *flash, int slot)
{
	return kBenchSector + (size_t)slot * flash->slotSize;
}

size_t benchFlashAgentOffset(BenchFlash *flash)
{
	return kBenchSector + 2 * (size_t)flash->slotSize;
}

int benchFlashRead(BenchFlash *flash, size_t offset, void *data, size_t length)
{
	return (pread(flash->fd, data, length, offset) == (ssize_t)length) ? 0 : -1;
}

int benchFlashWrite(BenchFlash *flash, size_t offset, const void *data, size_t length)
{
	return (pwrite(flash->fd, data, length, offset) == (ssize_t)length) ? 0 : -1;
}

int benchFlashErase(BenchFlash *flash, size_t offset, size_t length)
{
	static uint8_t erased[kBenchSector];
	memset(erased, 0xFF, sizeof(erased));
	for (size_t done = 0; done < length; done += kBenchSector)
		if (benchFlashWrite(flash, offset + done, erased, kBenchSector))
			return -1;
	return 0;
}

// ---- embedded:storage/flash on the `agent` partition (argument checks as modules/io/flash/esp32) ----

static size_t agentRange(xsMachine *the, int offset, size_t length)
{
	BenchFlash *flash = benchFlash();
	if ((offset < 0) || ((size_t)offset + length > flash->agentSize))
		xsRangeError("invalid offset");
	return benchFlashAgentOffset(flash) + (size_t)offset;
}

void xs_benchflash_size(xsMachine *the)
{
	xsmcSetInteger(xsResult, benchFlash()->agentSize);
}

void xs_benchflash_read(xsMachine *the)
{
	void *data;
	xsUnsignedValue length;
	xsmcGetBufferWritable(xsArg(0), &data, &length);
	size_t at = agentRange(the, xsmcToInteger(xsArg(1)), length);
	if (benchFlashRead(benchFlash(), at, data, length))
		xsUnknownError("read failed");
	xsmcSetInteger(xsResult, length);
}

void xs_benchflash_write(xsMachine *the)
{
	void *data;
	xsUnsignedValue length;
	xsmcGetBufferReadable(xsArg(0), &data, &length);
	size_t at = agentRange(the, xsmcToInteger(xsArg(1)), length);
	if (benchFlashWrite(benchFlash(), at, data, length))
		xsUnknownError("write failed");
}

void xs_benchflash_erase(xsMachine *the)
{
	int start = xsmcToInteger(xsArg(0));
	int end = (xsmcArgc > 1) ? xsmcToInteger(xsArg(1)) : start + 1;
	if ((start < 0) || (end <= start))
		xsRangeError("invalid block");
	size_t at = agentRange(the, start * kBenchSector, (size_t)(end - start) * kBenchSector);
	if (benchFlashErase(benchFlash(), at, (size_t)(end - start) * kBenchSector))
		xsUnknownError("erase failed");
}
