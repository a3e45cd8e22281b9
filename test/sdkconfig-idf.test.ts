// sdkconfig/sdkconfig.defaults is valid for ESP-IDF v6.0 (issue 17, point 2): every CONFIG_ symbol it sets or
// mentions is defined by a v6.0 Kconfig file (test/fixtures/esp-idf-v6.0-kconfig.json, written from ESP-IDF's
// Kconfig files by scripts/check-sdkconfig.mjs --write), rollback is on, bootloader validation is on, and
// anti-rollback appears only as a documented opt-in.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const text = readFileSync(join(root, "sdkconfig/sdkconfig.defaults"), "utf8");
const fixture = JSON.parse(readFileSync(join(root, "test/fixtures/esp-idf-v6.0-kconfig.json"), "utf8")) as { idf_version: string; symbols: Record<string, string> };
const set = new Map([...text.matchAll(/^CONFIG_(\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
const mentioned = [...new Set([...text.matchAll(/\bCONFIG_([A-Z0-9_]+)\b/g)].map((m) => m[1]!))];

function check(sdkconfig?: string): { status: number; out: string } {
  const args = [join(root, "scripts/check-sdkconfig.mjs"), ...(sdkconfig ? ["--sdkconfig", sdkconfig] : [])];
  try {
    const out = execFileSync(process.execPath, args, { encoding: "utf8", stdio: "pipe", env: { ...process.env, IDF_PATH: "" } });
    return { status: 0, out };
  } catch (e) {
    const err = e as { status: number; stderr: string };
    return { status: err.status, out: err.stderr };
  }
}

describe("sdkconfig.defaults against ESP-IDF v6.0", () => {
  it("every CONFIG_ symbol, set or mentioned, is defined by a v6.0 Kconfig file", () => {
    expect(fixture.idf_version).toBe("v6.0");
    expect(set.size).toBeGreaterThanOrEqual(8);
    for (const symbol of mentioned) expect(fixture.symbols[symbol], `CONFIG_${symbol}`).toMatch(/^components\/[\w/-]+\/Kconfig[\w.]*$/);
  });

  it("the check script passes this file and names what a v6.0 build would ignore (the 6.2+ rollback names)", () => {
    const ok = check();
    expect(ok.status, ok.out).toBe(0);
    expect(ok.out).toMatch(/all \d+ CONFIG_ symbols/);
    const file = join(mkdtempSync(join(tmpdir(), "sdkconfig-")), "sdkconfig.defaults");
    writeFileSync(file, `${text}CONFIG_BOOTLOADER_APP_ROLLBACK=y\nCONFIG_BOOTLOADER_APP_ROLLBACK_CONFIRM_BY_APP=y\n`);
    const bad = check(file);
    expect(bad.status).toBe(1);
    expect(bad.out).toMatch(/CONFIG_BOOTLOADER_APP_ROLLBACK, CONFIG_BOOTLOADER_APP_ROLLBACK_CONFIRM_BY_APP$/m);
  });

  it("rollback on, bootloader validation on at every boot, anti-rollback only as a documented opt-in", () => {
    expect(set.get("BOOTLOADER_APP_ROLLBACK_ENABLE")).toBe("y");
    for (const skip of ["BOOTLOADER_SKIP_VALIDATE_ALWAYS", "BOOTLOADER_SKIP_VALIDATE_ON_POWER_ON", "BOOTLOADER_SKIP_VALIDATE_IN_DEEP_SLEEP"]) expect(set.get(skip), skip).toBe("n");
    expect(set.has("BOOTLOADER_APP_ANTI_ROLLBACK")).toBe(false);
    expect(text).toMatch(/^#\s+CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK=y$/m);
    expect(text).toMatch(/eFuse[\s\S]*one-way, permanent/);
  });
});
