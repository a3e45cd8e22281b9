// The native modules (espota: OTA; ed25519 and p256: signature verify): each .c compiles (gcc -fsyntax-only against
// test/esp32-stubs), and their three faces (C host functions, `@` bindings in .js, types in .d.ts) name the same
// functions. The algorithms themselves are tested in ed25519-native.test.ts and p256-native.test.ts.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nacl from "tweetnacl";
import { describe, expect, it, vi } from "vitest";
import type { HashPort } from "../device/core/ports";

const root = join(import.meta.dirname, "..");
const native = join(root, "device/esp32/native");
const stubs = join(root, "test/esp32-stubs");

function gcc(file: string): void {
  execFileSync("gcc", ["-fsyntax-only", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-I", stubs, "-I", native, file], {
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

  it("ed25519.c compiles against the xsmc stubs, and fails to when it calls what ed25519-verify.h does not declare", () => {
    expect(() => gcc(join(native, "ed25519.c"))).not.toThrow();
    const dir = mkdtempSync(join(tmpdir(), "ed25519-"));
    const source = readFileSync(join(native, "ed25519.c"), "utf8");
    writeFileSync(join(dir, "broken.c"), source.replace('#include "ed25519-verify.h"', `#include "${join(native, "ed25519-verify.h")}"`).replace("(xsResult, ed25519_verify(", "(xsResult, ed25519_verify_detached("));
    expect(() => gcc(join(dir, "broken.c"))).toThrow();
  });

  it("p256.c and p256-verify.c compile against the xsmc and PSA stubs, and fail to on a PSA call the stubs do not declare", () => {
    expect(() => gcc(join(native, "p256.c"))).not.toThrow();
    expect(() => gcc(join(native, "p256-verify.c"))).not.toThrow();
    const dir = mkdtempSync(join(tmpdir(), "p256-"));
    // mbedTLS 4 (ESP-IDF v6.0) has no mbedtls_ecdsa_read_signature: only the PSA API remains.
    const broken = readFileSync(join(native, "p256-verify.c"), "utf8").replace("psa_verify_hash(key,", "mbedtls_ecdsa_read_signature(key,");
    writeFileSync(join(dir, "broken.c"), broken);
    expect(() => gcc(join(dir, "broken.c"))).toThrow();
  });

  for (const [module, minimum] of [["espota", 15], ["ed25519", 1], ["p256", 1]] as const)
    it(`every @ binding has a host function in ${module}.c and a declaration in ${module}.d.ts`, () => {
      const c = readFileSync(join(native, `${module}.c`), "utf8");
      const js = readFileSync(join(native, `${module}.js`), "utf8");
      const dts = readFileSync(join(native, `${module}.d.ts`), "utf8");
      const bindings = [...js.matchAll(/static\s+(\w+)\([^)]*\)\s*@\s*"(\w+)"/g)].map((m) => ({ method: m[1], fn: m[2] }));
      const hosts = new Set([...c.matchAll(/^void\s+(xs_\w+)\(xsMachine \*the\)/gm)].map((m) => m[1]));
      const declared = new Set([...dts.matchAll(/^\s*static\s+(\w+)\(/gm)].map((m) => m[1]));
      expect(bindings.length).toBeGreaterThanOrEqual(minimum);
      for (const { method, fn } of bindings) {
        expect(hosts, `host function ${fn}`).toContain(fn);
        expect(declared, `declaration of ${method}`).toContain(method);
      }
      expect(declared.size).toBe(bindings.length);
      expect(hosts.size).toBe(bindings.length);
    });

  it("resume calls esp_ota_resume from ESP-IDF v5.5 on, and before it (no esp_ota_resume) throws ESP_ERR_NOT_SUPPORTED", () => {
    const resumeBody = (version: [number, number, number]) => {
      const flags = [`-DESP_IDF_VERSION_MAJOR=${version[0]}`, `-DESP_IDF_VERSION_MINOR=${version[1]}`, `-DESP_IDF_VERSION_PATCH=${version[2]}`];
      execFileSync("gcc", ["-fsyntax-only", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-I", stubs, ...flags, join(native, "espota.c")], { stdio: "pipe" });
      const out = execFileSync("gcc", ["-E", "-P", "-I", stubs, ...flags, join(native, "espota.c")], { encoding: "utf8" });
      const body = out.slice(out.indexOf("void xs_espota_resume"));
      return body.slice(0, body.indexOf("\n}\n"));
    };
    for (const v of [[5, 5, 0], [6, 0, 0]] as [number, number, number][]) {
      expect(resumeBody(v), v.join(".")).toMatch(/esp_ota_resume\(p, 0xfffffffe|esp_ota_resume\(p, OTA_WITH_SEQUENTIAL_WRITES/);
    }
    for (const v of [[5, 4, 2], [5, 0, 0]] as [number, number, number][]) {
      const body = resumeBody(v);
      expect(body, v.join(".")).not.toMatch(/esp_ota_resume\(/);
      expect(body, v.join(".")).toMatch(/throwEsp\(the, 0x106\)/);
    }
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

// The ESP32 HashPort hands the agent's (message, signature, publicKey) to the native verify in that order. XS
// modules cannot load in Node: "crypt" is stubbed, and the binding is stood in for by tweetnacl, whose verdicts
// the C port reproduces (ed25519-native.test.ts).
vi.mock("crypt", () => ({ Digest: class {} }));
vi.mock("../device/esp32/native/p256", async () => {
  const { p256Node } = await import("../host-sim/device/node-verifiers");
  return { default: { verify: (m: Uint8Array, s: Uint8Array, k: Uint8Array) => p256Node.verify(m, s, k) } };
});
vi.mock("../device/esp32/native/ed25519", () => ({
  default: { verify: (m: Uint8Array, s: Uint8Array, k: Uint8Array) => nacl.sign.detached.verify(m, s, k) },
}));

describe("EspHashPort", () => {
  it("offers verifyEd25519 through the native module, arguments in the port's order", async () => {
    // A computed specifier: the host tsc cannot resolve "crypt", which hash.ts imports.
    const hashModule = "../device/esp32/hash";
    const { EspHashPort } = (await import(/* @vite-ignore */ hashModule)) as { EspHashPort: new () => Required<HashPort> };
    const port = new EspHashPort();
    const keys = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(5));
    const message = new TextEncoder().encode("manifest bytes");
    const signature = nacl.sign.detached(message, keys.secretKey);
    expect(port.verifyEd25519(message, signature, keys.publicKey)).toBe(true);
    expect(port.verifyEd25519(message.subarray(1), signature, keys.publicKey)).toBe(false);
  });
});

// The ESP32 verifiers hand (message, signature, publicKey) to their native modules in that order, under the
// protocol's algorithm names and lengths; the bindings are stood in for by tweetnacl and Node's crypto, whose
// verdicts the C reproduces (ed25519-native.test.ts, p256-native.test.ts).
describe("ESP32 signature verifiers", () => {
  it("ed25519Native and p256Native verify through their native modules, arguments in the interface's order", async () => {
    const { ed25519Native } = await import("../device/esp32/verify-ed25519");
    const { p256Native } = await import("../device/esp32/verify-p256");
    const { generateKeyPairSync, sign } = await import("node:crypto");
    const { p256PublicPoint } = await import("../server-stub/signing/p256");
    const message = new TextEncoder().encode("manifest bytes");
    const ed = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
    const edSig = nacl.sign.detached(message, ed.secretKey);
    expect([ed25519Native.alg, ed25519Native.publicKeyLength, ed25519Native.signatureLength]).toEqual(["ed25519", 32, 64]);
    expect(ed25519Native.verify(message, edSig, ed.publicKey)).toBe(true);
    expect(ed25519Native.verify(message.subarray(1), edSig, ed.publicKey)).toBe(false);
    const p = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const pSig = new Uint8Array(sign("sha256", message, { key: p.privateKey, dsaEncoding: "ieee-p1363" }));
    const point = p256PublicPoint(p.publicKey);
    expect([p256Native.alg, p256Native.publicKeyLength, p256Native.signatureLength]).toEqual(["ecdsa-p256-sha256", 65, 64]);
    expect(p256Native.verify(message, pSig, point)).toBe(true);
    expect(p256Native.verify(message.subarray(1), pSig, point)).toBe(false);
  });
});
