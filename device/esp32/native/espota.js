// Host-function bindings for espota.c (XS `@` syntax: compiled by xsc, never by tsc; espota.d.ts types it).
// Partitions are named by label; errors are thrown with the ESP-IDF error name first in the message.

export default class EspOta {
	static chipId() @ "xs_espota_chip_id";
	static running() @ "xs_espota_running";
	static boot() @ "xs_espota_boot";
	static next() @ "xs_espota_next";
	static label(subtype) @ "xs_espota_label";
	static subtype(label) @ "xs_espota_subtype";
	static size(label) @ "xs_espota_size";
	static state(label) @ "xs_espota_state";
	static description(label) @ "xs_espota_description";
	static read(label, offset, buffer) @ "xs_espota_read";
	static begin(label, imageSize) @ "xs_espota_begin";
	static resume(label, offset) @ "xs_espota_resume";
	static write(buffer) @ "xs_espota_write";
	static end() @ "xs_espota_end";
	static abort() @ "xs_espota_abort";
	static setBoot(label) @ "xs_espota_set_boot";
	static markValid() @ "xs_espota_mark_valid";
	static markInvalid() @ "xs_espota_mark_invalid";
	static markInvalidAndReboot() @ "xs_espota_mark_invalid_and_reboot";
	static rollbackPossible() @ "xs_espota_rollback_possible";
	static restart() @ "xs_espota_restart";
	static resetReason() @ "xs_espota_reset_reason";
	static coredumpSummary() @ "xs_espota_coredump_summary";
	static uptimeMs() @ "xs_espota_uptime_ms";
	static freeHeap() @ "xs_espota_free_heap";
	static minFreeHeap() @ "xs_espota_min_free_heap";
}
