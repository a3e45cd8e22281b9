// The native OTA module: espota.c compiles (gcc -fsyntax-only against test/esp32-stubs), and its three faces
// (C host functions, `@` bindings in espota.js, types in espota.d.ts) name the same functions.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const native = join(root, "device/esp32/native");
const stubs = join(root, "test/esp32-stubs");

function gcc(file: string): void {
  execFileSync("gcc", ["-fsyntax-only", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-I", stubs, file], {
    stdio: "pipe",
  });
}

describe("esp32 native module", () => {
  it("espota.c compiles against the ESP-IDF and xsmc stubs", () => {
    expect(() => gcc(join(native, "espota.c"))).not.toThrow();
  });

  it("the syntax check fails on a call the stubs do not declare", () => {
    const dir = mkdtempSync(join(tmpdir(), "espota-"));
    const broken = readFileSync(join(native, "espota.c"), "utf8").replace(
      "esp_err_t err = esp_ota_end(handle);",
      "esp_err_t err = esp_ota_finish(handle);",
    );
    writeFileSync(join(dir, "broken.c"), broken);
    expect(() => gcc(join(dir, "broken.c"))).toThrow();
  });

  it("every @ binding has a host function in espota.c and a declaration in espota.d.ts", () => {
    const c = readFileSync(join(native, "espota.c"), "utf8");
    const js = readFileSync(join(native, "espota.js"), "utf8");
    const dts = readFileSync(join(native, "espota.d.ts"), "utf8");
    const bindings = [...js.matchAll(/static\s+(\w+)\([^)]*\)\s*@\s*"(\w+)"/g)].map((m) => ({ method: m[1], fn: m[2] }));
    const hosts = new Set([...c.matchAll(/^void\s+(xs_\w+)\(xsMachine \*the\)/gm)].map((m) => m[1]));
    const declared = new Set([...dts.matchAll(/^\s*static\s+(\w+)\(/gm)].map((m) => m[1]));
    expect(bindings.length).toBeGreaterThan(15);
    for (const { method, fn } of bindings) {
      expect(hosts, `host function ${fn}`).toContain(fn);
      expect(declared, `declaration of ${method}`).toContain(method);
    }
    expect(declared.size).toBe(bindings.length);
    expect(hosts.size).toBe(bindings.length);
  });

  it("resume is refused at offsets that are not sector boundaries, and writes to the running slot are refused", () => {
    const c = readFileSync(join(native, "espota.c"), "utf8");
    const resume = c.slice(c.indexOf("void xs_espota_resume"), c.indexOf("void xs_espota_write"));
    expect(resume).toMatch(/offset % p->erase_size/);
    expect(resume).toMatch(/OTA_WITH_SEQUENTIAL_WRITES/);
    expect(c).toMatch(/running->address == p->address/);
    for (const fn of ["xs_espota_begin", "xs_espota_resume"]) {
      const body = c.slice(c.indexOf(`void ${fn}`));
      expect(body.slice(0, body.indexOf("\n}\n")), fn).toMatch(/writableSlot\(/);
    }
  });
});
