// HealthPort on ESP-IDF, through the native module: esp_reset_reason(), uptime from esp_timer_get_time(), and
// the system heap. The heap is ESP-IDF's (XS allocates its chunks and slots
// inside it); XS's own meters would need Moddable's instrumentation build, so they are not reported.
import type { HealthPort } from "../core/ports";
import { RESET_REASONS, type ResetReason } from "../protocol/health";
import EspOta from "./native/espota";

export class EspHealthPort implements HealthPort {
  resetReason(): ResetReason {
    const name = EspOta.resetReason();
    return (RESET_REASONS as readonly string[]).includes(name) ? (name as ResetReason) : "unknown";
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
