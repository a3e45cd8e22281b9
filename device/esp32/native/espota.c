/*
 * esp32/native/espota: the esp_ota_* calls no Moddable module offers (image states, confirm/reject,
 * running/boot partitions, app descriptions, resumable writes). Failures throw an Error whose message
 * starts with the ESP-IDF error name and code, e.g. "ESP_ERR_OTA_VALIDATE_FAILED (0x1503)"; espota.js's
 * callers turn that into OtaPortError.
 */

#include "xsmc.h"
#include "xsHost.h"

#include <string.h>

#include "esp_err.h"
#include "esp_idf_version.h"
#include "esp_partition.h"
#include "app_update/include/esp_ota_ops.h"	// the path Moddable's own ESP32 modules use
#include "esp_system.h"
#include "esp_timer.h"
#include "sdkconfig.h"
#if CONFIG_ESP_COREDUMP_ENABLE_TO_FLASH
#include "esp_core_dump.h"
#endif

#define kFirstOtaSubtype 0x10
#define kLastOtaSubtype 0x1F

// One update at a time: the agent writes one slot, and a stale handle must never keep writing.
static esp_ota_handle_t gHandle = 0;
static uint8_t gHandleOpen = 0;

static void throwEsp(xsMachine *the, esp_err_t err)
{
	xsUnknownError("%s (0x%x)", esp_err_to_name(err), (unsigned)err);
}

static const esp_partition_t *appPartition(xsMachine *the, xsSlot *slot)
{
	const esp_partition_t *p = esp_partition_find_first(ESP_PARTITION_TYPE_APP, ESP_PARTITION_SUBTYPE_ANY, xsmcToString(*slot));
	if (!p)
		throwEsp(the, ESP_ERR_NOT_FOUND);
	return p;
}

static int isOtaSlot(const esp_partition_t *p)
{
	return (p->type == ESP_PARTITION_TYPE_APP) && (p->subtype >= kFirstOtaSubtype) && (p->subtype <= kLastOtaSubtype);
}

// Writes to the running slot are refused here as well as in esp_ota_begin/resume: it is the one thing
// that bricks a board, so it is checked twice.
static const esp_partition_t *writableSlot(xsMachine *the, xsSlot *slot)
{
	const esp_partition_t *p = appPartition(the, slot);
	const esp_partition_t *running = esp_ota_get_running_partition();
	if (!isOtaSlot(p))
		throwEsp(the, ESP_ERR_INVALID_ARG);
	if (!running || (running->address == p->address))
		throwEsp(the, ESP_ERR_OTA_PARTITION_CONFLICT);
	return p;
}

static void setLabel(xsMachine *the, const esp_partition_t *p)
{
	if (p)
		xsmcSetString(xsResult, (char *)p->label);
	else
		xsmcSetUndefined(xsResult);
}

static void dropHandle(void)
{
	if (gHandleOpen)
		esp_ota_abort(gHandle);
	gHandleOpen = 0;
	gHandle = 0;
}

void xs_espota_chip_id(xsMachine *the)
{
	xsmcSetInteger(xsResult, CONFIG_IDF_FIRMWARE_CHIP_ID);
}

void xs_espota_running(xsMachine *the)
{
	setLabel(the, esp_ota_get_running_partition());
}

void xs_espota_boot(xsMachine *the)
{
	setLabel(the, esp_ota_get_boot_partition());
}

void xs_espota_next(xsMachine *the)
{
	setLabel(the, esp_ota_get_next_update_partition(NULL));
}

void xs_espota_label(xsMachine *the)
{
	int subtype = xsmcToInteger(xsArg(0));
	if ((subtype < 0) || (subtype > 0xFF))
		throwEsp(the, ESP_ERR_INVALID_ARG);
	setLabel(the, esp_partition_find_first(ESP_PARTITION_TYPE_APP, (esp_partition_subtype_t)subtype, NULL));
}

void xs_espota_subtype(xsMachine *the)
{
	xsmcSetInteger(xsResult, appPartition(the, &xsArg(0))->subtype);
}

void xs_espota_size(xsMachine *the)
{
	xsmcSetInteger(xsResult, appPartition(the, &xsArg(0))->size);
}

void xs_espota_state(xsMachine *the)
{
	const esp_partition_t *p = appPartition(the, &xsArg(0));
	esp_ota_img_states_t state;
	esp_err_t err = esp_ota_get_state_partition(p, &state);
	if (ESP_ERR_NOT_FOUND == err) {
		xsmcSetString(xsResult, "none");
		return;
	}
	if (ESP_OK != err)
		throwEsp(the, err);
	switch (state) {
		case ESP_OTA_IMG_NEW: xsmcSetString(xsResult, "new"); break;
		case ESP_OTA_IMG_PENDING_VERIFY: xsmcSetString(xsResult, "pending_verify"); break;
		case ESP_OTA_IMG_VALID: xsmcSetString(xsResult, "valid"); break;
		case ESP_OTA_IMG_INVALID: xsmcSetString(xsResult, "invalid"); break;
		case ESP_OTA_IMG_ABORTED: xsmcSetString(xsResult, "aborted"); break;
		default: xsmcSetString(xsResult, "undefined"); break;
	}
}

// [version, projectName, secureVersion, idfVersion], or undefined when the slot holds no app description.
void xs_espota_description(xsMachine *the)
{
	const esp_partition_t *p = appPartition(the, &xsArg(0));
	esp_app_desc_t desc;
	char text[33];
	esp_err_t err = esp_ota_get_partition_description(p, &desc);
	if (ESP_ERR_NOT_FOUND == err) {
		xsmcSetUndefined(xsResult);
		return;
	}
	if (ESP_OK != err)
		throwEsp(the, err);

	xsmcVars(1);
	xsmcSetNewArray(xsResult, 4);
	text[32] = 0;	// the fields are not NUL-terminated when full
	memcpy(text, desc.version, 32);
	xsmcSetString(xsVar(0), text);
	xsmcSetIndex(xsResult, 0, xsVar(0));
	memcpy(text, desc.project_name, 32);
	xsmcSetString(xsVar(0), text);
	xsmcSetIndex(xsResult, 1, xsVar(0));
	xsmcSetNumber(xsVar(0), (double)desc.secure_version);
	xsmcSetIndex(xsResult, 2, xsVar(0));
	memcpy(text, desc.idf_ver, 32);
	xsmcSetString(xsVar(0), text);
	xsmcSetIndex(xsResult, 3, xsVar(0));
}

// read(label, offset, buffer): fills the whole buffer from the slot.
void xs_espota_read(xsMachine *the)
{
	const esp_partition_t *p = appPartition(the, &xsArg(0));
	int offset = xsmcToInteger(xsArg(1));
	void *data;
	xsUnsignedValue length;
	xsmcGetBufferWritable(xsArg(2), &data, &length);
	if ((offset < 0) || ((size_t)offset + length > p->size))
		throwEsp(the, ESP_ERR_INVALID_SIZE);
	esp_err_t err = esp_partition_read(p, offset, data, length);
	if (ESP_OK != err)
		throwEsp(the, err);
}

// begin(label, imageSize): erases lazily, sector by sector, as writes reach them.
void xs_espota_begin(xsMachine *the)
{
	const esp_partition_t *p = writableSlot(the, &xsArg(0));
	int imageSize = xsmcToInteger(xsArg(1));
	if ((imageSize <= 0) || ((size_t)imageSize > p->size))
		throwEsp(the, ESP_ERR_INVALID_SIZE);
	dropHandle();
	esp_ota_handle_t handle;
	esp_err_t err = esp_ota_begin(p, OTA_WITH_SEQUENTIAL_WRITES, &handle);
	if (ESP_OK != err)
		throwEsp(the, err);
	gHandle = handle;
	gHandleOpen = 1;
}

// resume(label, offset): only at a sector boundary, so the first write erases the sector it lands in and
// never programs over bytes a torn earlier write left behind. Nothing before offset is erased.
// esp_ota_resume exists from ESP-IDF v5.5 on (v6.0 is what Moddable 8.2.3 builds with). On an older IDF this
// throws ESP_ERR_NOT_SUPPORTED, and the agent (device/core/download.ts) begins the slot again from offset 0:
// the download restarts from the start of the image instead of resuming.
void xs_espota_resume(xsMachine *the)
{
	const esp_partition_t *p = writableSlot(the, &xsArg(0));
	int offset = xsmcToInteger(xsArg(1));
	if ((offset <= 0) || ((size_t)offset > p->size) || (offset % p->erase_size))
		throwEsp(the, ESP_ERR_INVALID_ARG);
#if ESP_IDF_VERSION < ESP_IDF_VERSION_VAL(5, 5, 0)
	throwEsp(the, ESP_ERR_NOT_SUPPORTED);
#else
	dropHandle();
	esp_ota_handle_t handle;
	esp_err_t err = esp_ota_resume(p, OTA_WITH_SEQUENTIAL_WRITES, (size_t)offset, &handle);
	if (ESP_OK != err)
		throwEsp(the, err);
	gHandle = handle;
	gHandleOpen = 1;
#endif
}

void xs_espota_write(xsMachine *the)
{
	void *data;
	xsUnsignedValue length;
	if (!gHandleOpen)
		throwEsp(the, ESP_ERR_INVALID_STATE);
	xsmcGetBufferReadable(xsArg(0), &data, &length);
	esp_err_t err = esp_ota_write(gHandle, data, length);
	if (ESP_OK != err)
		throwEsp(the, err);
}

// esp_ota_end frees the handle whatever it returns.
void xs_espota_end(xsMachine *the)
{
	if (!gHandleOpen)
		throwEsp(the, ESP_ERR_INVALID_STATE);
	esp_ota_handle_t handle = gHandle;
	gHandleOpen = 0;
	gHandle = 0;
	esp_err_t err = esp_ota_end(handle);
	if (ESP_OK != err)
		throwEsp(the, err);
}

void xs_espota_abort(xsMachine *the)
{
	dropHandle();
}

void xs_espota_set_boot(xsMachine *the)
{
	const esp_partition_t *p = appPartition(the, &xsArg(0));
	if (!isOtaSlot(p))
		throwEsp(the, ESP_ERR_INVALID_ARG);
	esp_err_t err = esp_ota_set_boot_partition(p);
	if (ESP_OK != err)
		throwEsp(the, err);
}

void xs_espota_mark_valid(xsMachine *the)
{
	esp_err_t err = esp_ota_mark_app_valid_cancel_rollback();
	if (ESP_OK != err)
		throwEsp(the, err);
}

void xs_espota_mark_invalid(xsMachine *the)
{
	esp_err_t err = esp_ota_mark_app_invalid_rollback();
	if (ESP_OK != err)
		throwEsp(the, err);
}

// Returns only on failure.
void xs_espota_mark_invalid_and_reboot(xsMachine *the)
{
	esp_err_t err = esp_ota_mark_app_invalid_rollback_and_reboot();
	throwEsp(the, (ESP_OK == err) ? ESP_FAIL : err);
}

void xs_espota_rollback_possible(xsMachine *the)
{
	xsmcSetBoolean(xsResult, esp_ota_check_rollback_is_possible());
}

void xs_espota_restart(xsMachine *the)
{
	esp_restart();
}

// Health facts for the agent's health reports (device/esp32/health.ts).
void xs_espota_reset_reason(xsMachine *the)
{
	const char *name;
	switch (esp_reset_reason()) {
		case ESP_RST_POWERON: name = "power_on"; break;
		case ESP_RST_EXT: name = "external"; break;
		case ESP_RST_SW: name = "software"; break;
		case ESP_RST_PANIC: name = "panic"; break;
		case ESP_RST_INT_WDT: name = "int_wdt"; break;
		case ESP_RST_TASK_WDT: name = "task_wdt"; break;
		case ESP_RST_WDT: name = "wdt"; break;
		case ESP_RST_DEEPSLEEP: name = "deep_sleep"; break;
		case ESP_RST_BROWNOUT: name = "brownout"; break;
		case ESP_RST_SDIO: name = "sdio"; break;
		default: name = "unknown"; break;
	}
	xsmcSetString(xsResult, (char *)name);
}

// The core dump in flash, as [task, pc, cause, [backtrace...], backtraceCorrupted], or undefined when there is none
// (or it fails its checksum, or core dumps to flash are off in sdkconfig). Read only: the dump stays for idf.py.
void xs_espota_coredump_summary(xsMachine *the)
{
#if CONFIG_ESP_COREDUMP_ENABLE_TO_FLASH
	static esp_core_dump_summary_t summary;	// ~200 bytes: not on the XS task's stack
	char task[sizeof(summary.exc_task)];
	uint32_t i, depth;

	if ((ESP_OK != esp_core_dump_image_check()) || (ESP_OK != esp_core_dump_get_summary(&summary)))
		return;

	xsmcVars(2);
	xsmcSetNewArray(xsResult, 5);
	memcpy(task, summary.exc_task, sizeof(task));
	task[sizeof(task) - 1] = 0;
	xsmcSetString(xsVar(0), task);
	xsmcSetIndex(xsResult, 0, xsVar(0));
	xsmcSetNumber(xsVar(0), (double)summary.exc_pc);
	xsmcSetIndex(xsResult, 1, xsVar(0));
#if CONFIG_IDF_TARGET_ARCH_XTENSA
	xsmcSetNumber(xsVar(0), (double)summary.ex_info.exc_cause);
#else
	xsmcSetNumber(xsVar(0), (double)summary.ex_info.mcause);
#endif
	xsmcSetIndex(xsResult, 2, xsVar(0));
	depth = summary.exc_bt_info.depth;
	if (depth > sizeof(summary.exc_bt_info.bt) / sizeof(summary.exc_bt_info.bt[0]))
		depth = sizeof(summary.exc_bt_info.bt) / sizeof(summary.exc_bt_info.bt[0]);
	xsmcSetNewArray(xsVar(1), depth);
	for (i = 0; i < depth; i++) {
		xsmcSetNumber(xsVar(0), (double)summary.exc_bt_info.bt[i]);
		xsmcSetIndex(xsVar(1), i, xsVar(0));
	}
	xsmcSetIndex(xsResult, 3, xsVar(1));
	xsmcSetBoolean(xsVar(0), summary.exc_bt_info.corrupted);
	xsmcSetIndex(xsResult, 4, xsVar(0));
#endif
}

void xs_espota_uptime_ms(xsMachine *the)
{
	xsmcSetNumber(xsResult, (double)(esp_timer_get_time() / 1000));
}

void xs_espota_free_heap(xsMachine *the)
{
	xsmcSetNumber(xsResult, (double)esp_get_free_heap_size());
}

void xs_espota_min_free_heap(xsMachine *the)
{
	xsmcSetNumber(xsResult, (double)esp_get_minimum_free_heap_size());
}
