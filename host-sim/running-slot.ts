// Which slot the simulated chip is running. On a board the MMU mapping tells the app; here the bootloader
// model records it next to a file-backed flash (FLASH.bin.running.json) so separate commands agree.
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";

export interface RunningRecord {
  /** Partition name the last boot mapped, or null when nothing booted (a bricked device). */
  running: string | null;
  version: string | null;
  bootedAt: string;
}

const recordPath = (flashPath: string) => `${flashPath}.running.json`;

export function readRunning(flashPath: string): RunningRecord | null {
  const path = recordPath(flashPath);
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, "utf8")) as RunningRecord;
}

export function writeRunning(flashPath: string, record: RunningRecord) {
  writeFileSync(recordPath(flashPath), JSON.stringify(record, null, 2) + "\n");
}

/** A freshly created flash has never booted. */
export function clearRunning(flashPath: string) {
  rmSync(recordPath(flashPath), { force: true });
}
