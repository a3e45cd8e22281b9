// HealthPort on ESP-IDF, through the native module: esp_reset_reason(), uptime from esp_timer_get_time(), and
// the system heap. The heap is ESP-IDF's (XS allocates its chunks and slots
// inside it); XS's own meters would need Moddable's instrumentation build, so they are not reported.
import type { HealthPort } from "../core/ports";
import { COREDUMP_BACKTRACE_MAX, COREDUMP_TASK_MAX } from "../protocol/limits";
import { CRASH_RESET_REASONS, RESET_REASONS, type CoredumpSummary, type ResetReason } from "../protocol/health";
import EspOta from "./native/espota";

export class EspHealthPort implements HealthPort {
  resetReason(): ResetReason {
    const name = EspOta.resetReason();
    return (RESET_REASONS as readonly string[]).includes(name) ? (name as ResetReason) : "unknown";
  }
  /** Only after a crash reset: a dump left by an older crash says nothing about this boot. */
  coredump(): CoredumpSummary | null {
    if (!CRASH_RESET_REASONS.includes(this.resetReason())) return null;
    const s = EspOta.coredumpSummary();
    if (!s) return null;
    return { task: s[0].slice(0, COREDUMP_TASK_MAX), pc: s[1] >>> 0, cause: s[2] >>> 0, backtrace: s[3].slice(0, COREDUMP_BACKTRACE_MAX).map((pc) => pc >>> 0), backtrace_corrupted: s[4] };
  }
  uptimeMs(): number {
    return EspOta.uptimeMs();
  }
  freeHeap(): number {
    return EspOta.freeHeap();
  }
  minFreeHeap(): number {
    return EspOta.minFreeHeap();
  }
}
