// Device health reports: what a device says about itself after an update (and at each start), so the server can
// judge a release by how devices run on it, not only by whether they installed it. Limits are in limits.ts.

/** esp_reset_reason() names (ESP-IDF esp_reset_reason_t without the ESP_RST_ prefix, lower case). */
export const RESET_REASONS = [
  "unknown", "power_on", "external", "software", "panic", "int_wdt", "task_wdt", "wdt", "deep_sleep", "brownout", "sdio",
  "usb", "jtag", "efuse", "power_glitch", "cpu_lockup",
] as const;
export type ResetReason = (typeof RESET_REASONS)[number];

/** Resets that mean the firmware died rather than being restarted on purpose or powered on. */
export const CRASH_RESET_REASONS: readonly ResetReason[] = ["panic", "int_wdt", "task_wdt", "wdt", "brownout", "cpu_lockup"];

/** What ESP-IDF's esp_core_dump_get_summary() says of the crash a core dump in flash records (v6.0,
 * esp_core_dump_summary_t), cut to what fits a report: the task, where it stopped, and the backtrace. */
export interface CoredumpSummary {
  /** exc_task: the crashing task's name (at most COREDUMP_TASK_MAX characters). */
  task: string;
  /** exc_pc */
  pc: number;
  /** The exception cause (Xtensa EXCCAUSE, RISC-V mcause); null where the summary has none. */
  cause: number | null;
  /** exc_bt_info.bt[0..depth): program counters, innermost first (at most COREDUMP_BACKTRACE_MAX). */
  backtrace: number[];
  /** exc_bt_info.corrupted */
  backtrace_corrupted: boolean;
}

export interface HealthReport {
  /** The update whose soak window this report belongs to; null for a report at start outside any window. */
  update_id: string | null;
  /** The version running. */
  version: string;
  reset_reason: ResetReason;
  uptime_s: number;
  /** Bytes; null where the platform cannot tell. */
  free_heap: number | null;
  min_free_heap: number | null;
  /** Crash or watchdog resets since the update was confirmed (0 outside a soak window). */
  crash_reboots: number;
  /** The application's self-test checks, run again for this report: name → passed. */
  checks: Record<string, boolean>;
  /** Application metrics (AgentConfig.metrics): name → number. */
  metrics: Record<string, number>;
  sequence?: number | null;
  timestamp?: string | null;
}
