/*
 * The bench's stand-in for device/esp32/native/espota.c on Linux: the same host functions (so espota.js and
 * device/esp32/ota.ts run unmodified) over the bench's flash file (bench-flash.h) instead of ESP-IDF's esp_ota_*.
 * It models what the agent relies on: two OTA slots, image states with the bootloader's decision at start
 * (flash-lin.c), sequential writes that erase each sector as they reach it, resume at a sector boundary, the
 * running slot never written, and restart = the process exits for the harness to start it again.
 * esp_ota_end here checks the image header (magic 0xE9, chip id 0, app descriptor); the full-image SHA-256 is the
 * agent's own check against the signed manifest. Bench-only: never part of the ESP32 build.
 */
#include "xsmc.h"
#include "bench-flash.h"

#include <string.h>
#include <time.h>

extern void benchExit(xsMachine *the, int code, const char *outcome);

#define kExitRestart 10

static const char *kLabels[2] = { "ota_0", "ota_1" };
static const char *kStates[] = { "none", "new", "pending_verify", "valid", "invalid", "aborted", "undefined" };

static int gHandleOpen = 0, gHandleSlot = -1;
static size_t gHandleOffset = 0, gHandleErasedTo = 0;
static struct timespec gStart;

#define throwEsp(name, code) xsUnknownError("%s (0x%x)", name, (unsigned)(code))

static int slotOf(xsMachine *the, xsSlot *label)
{
	const char *name = xsmcToString(*label);
	for (int i = 0; i < 2; i++)
		if (!strcmp(name, kLabels[i]))
			return i;
	throwEsp("ESP_ERR_NOT_FOUND", 0x105);
	return -1;
}

static int writableSlot(xsMachine *the, xsSlot *label)
{
	int slot = slotOf(the, label);
	if (slot == benchFlash()->running)
		throwEsp("ESP_ERR_OTA_PARTITION_CONFLICT", 0x1501);
	return slot;
}

void xs_espota_chip_id(xsMachine *the) { xsmcSetInteger(xsResult, 0); }
void xs_espota_running(xsMachine *the) { xsmcSetString(xsResult, (char *)kLabels[benchFlash()->running]); }
void xs_espota_boot(xsMachine *the) { xsmcSetString(xsResult, (char *)kLabels[benchFlash()->boot]); }
void xs_espota_next(xsMachine *the) { xsmcSetString(xsResult, (char *)kLabels[1 - benchFlash()->running]); }

void xs_espota_label(xsMachine *the)
{
	int subtype = xsmcToInteger(xsArg(0));
	if ((subtype == 0x10) || (subtype == 0x11))
		xsmcSetString(xsResult, (char *)kLabels[subtype - 0x10]);
}

void xs_espota_subtype(xsMachine *the) { xsmcSetInteger(xsResult, 0x10 + slotOf(the, &xsArg(0))); }

void xs_espota_size(xsMachine *the)
{
	slotOf(the, &xsArg(0));
	xsmcSetInteger(xsResult, benchFlash()->slotSize);
}

void xs_espota_state(xsMachine *the)
{
	uint8_t state = benchFlash()->state[slotOf(the, &xsArg(0))];
	xsmcSetString(xsResult, (char *)kStates[(state <= kStateUndefined) ? state : kStateUndefined]);
}

static void text(xsMachine *the, const uint8_t *field, int index)
{
	char value[33];
	memcpy(value, field, 32);
	value[32] = 0;
	xsmcSetString(xsVar(0), value);
	xsmcSetIndex(xsResult, index, xsVar(0));
}

// esp_ota_get_partition_description: the esp_app_desc_t at image offset 0x20, if its magic word is there.
void xs_espota_description(xsMachine *the)
{
	BenchFlash *flash = benchFlash();
	uint8_t image[0x20 + 144];
	if (benchFlashRead(flash, benchFlashSlotOffset(flash, slotOf(the, &xsArg(0))), image, sizeof(image)))
		throwEsp("ESP_FAIL", -1);
	const uint8_t *desc = image + 0x20;
	if ((desc[0] != 0x32) || (desc[1] != 0x54) || (desc[2] != 0xCD) || (desc[3] != 0xAB))
		return;
	xsmcVars(1);
	xsmcSetNewArray(xsResult, 4);
	text(the, desc + 16, 0);
	text(the, desc + 48, 1);
	xsmcSetNumber(xsVar(0), desc[4] | (desc[5] << 8) | (desc[6] << 16) | ((uint32_t)desc[7] << 24));
	xsmcSetIndex(xsResult, 2, xsVar(0));
	text(the, desc + 112, 3);
}

void xs_espota_read(xsMachine *the)
{
	BenchFlash *flash = benchFlash();
	int slot = slotOf(the, &xsArg(0));
	int offset = xsmcToInteger(xsArg(1));
	void *data;
	xsUnsignedValue length;
	xsmcGetBufferWritable(xsArg(2), &data, &length);
	if ((offset < 0) || ((size_t)offset + length > flash->slotSize))
		throwEsp("ESP_ERR_INVALID_SIZE", 0x104);
	if (benchFlashRead(flash, benchFlashSlotOffset(flash, slot) + offset, data, length))
		throwEsp("ESP_FAIL", -1);
}

static void openHandle(int slot, size_t offset)
{
	gHandleOpen = 1;
	gHandleSlot = slot;
	gHandleOffset = gHandleErasedTo = offset;
}

void xs_espota_begin(xsMachine *the)
{
	int slot = writableSlot(the, &xsArg(0));
	int imageSize = xsmcToInteger(xsArg(1));
	if ((imageSize <= 0) || ((size_t)imageSize > benchFlash()->slotSize))
		throwEsp("ESP_ERR_INVALID_SIZE", 0x104);
	openHandle(slot, 0);
}

void xs_espota_resume(xsMachine *the)
{
	int slot = writableSlot(the, &xsArg(0));
	int offset = xsmcToInteger(xsArg(1));
	if ((offset <= 0) || ((size_t)offset > benchFlash()->slotSize) || (offset % kBenchSector))
		throwEsp("ESP_ERR_INVALID_ARG", 0x102);
	openHandle(slot, (size_t)offset);
}

// Sequential writes: each sector is erased when the first write reaches it (OTA_WITH_SEQUENTIAL_WRITES).
void xs_espota_write(xsMachine *the)
{
	BenchFlash *flash = benchFlash();
	void *data;
	xsUnsignedValue length;
	if (!gHandleOpen)
		throwEsp("ESP_ERR_INVALID_STATE", 0x103);
	xsmcGetBufferReadable(xsArg(0), &data, &length);
	if (gHandleOffset + length > flash->slotSize)
		throwEsp("ESP_ERR_INVALID_SIZE", 0x104);
	size_t base = benchFlashSlotOffset(flash, gHandleSlot);
	while (gHandleErasedTo < gHandleOffset + length) {
		if (benchFlashErase(flash, base + gHandleErasedTo, kBenchSector))
			throwEsp("ESP_ERR_FLASH_OP_FAIL", 0x6001);
		gHandleErasedTo += kBenchSector;
	}
	if (benchFlashWrite(flash, base + gHandleOffset, data, length))
		throwEsp("ESP_ERR_FLASH_OP_FAIL", 0x6001);
	gHandleOffset += length;
}

void xs_espota_end(xsMachine *the)
{
	BenchFlash *flash = benchFlash();
	uint8_t header[0x24];
	if (!gHandleOpen)
		throwEsp("ESP_ERR_INVALID_STATE", 0x103);
	gHandleOpen = 0;
	if (benchFlashRead(flash, benchFlashSlotOffset(flash, gHandleSlot), header, sizeof(header)))
		throwEsp("ESP_FAIL", -1);
	int chipId = header[12] | (header[13] << 8);
	if ((header[0] != 0xE9) || (chipId != 0) || (header[0x20] != 0x32) || (header[0x23] != 0xAB))
		throwEsp("ESP_ERR_OTA_VALIDATE_FAILED", 0x1503);
}

void xs_espota_abort(xsMachine *the) { gHandleOpen = 0; }

// esp_ota_set_boot_partition with rollback enabled: the slot's otadata entry is new until it boots.
void xs_espota_set_boot(xsMachine *the)
{
	BenchFlash *flash = benchFlash();
	int slot = slotOf(the, &xsArg(0));
	flash->boot = slot;
	if (slot != flash->running)
		flash->state[slot] = kStateNew;
	benchFlashSave(flash);
}

void xs_espota_mark_valid(xsMachine *the)
{
	BenchFlash *flash = benchFlash();
	flash->state[flash->running] = kStateValid;
	flash->boot = flash->running;
	benchFlashSave(flash);
}

static int rollbackPossible(BenchFlash *flash)
{
	return kStateValid == flash->state[1 - flash->running];
}

void xs_espota_mark_invalid(xsMachine *the)
{
	BenchFlash *flash = benchFlash();
	if (!rollbackPossible(flash))
		throwEsp("ESP_ERR_OTA_ROLLBACK_FAILED", 0x1505);
	flash->state[flash->running] = kStateInvalid;
	flash->boot = 1 - flash->running;
	benchFlashSave(flash);
}

void xs_espota_restart(xsMachine *the)
{
	BenchFlash *flash = benchFlash();
	flash->reset = kResetSoftware;
	benchFlashSave(flash);
	benchExit(the, kExitRestart, "restart");
}

void xs_espota_mark_invalid_and_reboot(xsMachine *the)
{
	xs_espota_mark_invalid(the);
	xs_espota_restart(the);
}

void xs_espota_rollback_possible(xsMachine *the) { xsmcSetBoolean(xsResult, rollbackPossible(benchFlash())); }

void xs_espota_reset_reason(xsMachine *the)
{
	xsmcSetString(xsResult, (kResetSoftware == benchFlash()->reset) ? "software" : "power_on");
}

// No core dump partition on the host: esp_core_dump_image_check() would find none (undefined, as espota.c returns).
void xs_espota_coredump_summary(xsMachine *the) {}

void xs_espota_uptime_ms(xsMachine *the)
{
	struct timespec now;
	if (!gStart.tv_sec)
		clock_gettime(CLOCK_MONOTONIC, &gStart);
	clock_gettime(CLOCK_MONOTONIC, &now);
	xsmcSetNumber(xsResult, (double)(now.tv_sec - gStart.tv_sec) * 1000 + (now.tv_nsec - gStart.tv_nsec) / 1000000);
}

// The ESP-IDF heap has no counterpart here: the bench's figures are the XS machine's own (host-lin.c).
void xs_espota_free_heap(xsMachine *the) { xsmcSetNumber(xsResult, 0); }
void xs_espota_min_free_heap(xsMachine *the) { xsmcSetNumber(xsResult, 0); }
