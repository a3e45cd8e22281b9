// The ESP32's native ECDSA P-256 verify (device/esp32/native/p256-verify.c, PSA Crypto), compiled for this host
// against Debian's libmbedtls (libmbedtls-dev, Mbed TLS 2.28: the same PSA calls as ESP-IDF v6.0's mbedTLS 4) into
// test/p256-driver.c, must accept signatures node:crypto (OpenSSL) makes and refuse every one-bit corruption of
// signature, message or key, and degenerate inputs. Skipped, in one line, where libmbedtls-dev is missing outside CI.
import { execFileSync } from "node:child_process";
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { p256PublicPoint } from "../server-stub/signing/p256";
import { p256Node } from "../host-sim/device/node-verifiers";

const root = join(import.meta.dirname, "..");
const native = join(root, "device/esp32/native");
const available = existsSync("/usr/include/psa/crypto.h");
if (!available && process.env.CI !== "true") console.log("p256-native: libmbedtls-dev not installed (apt-get install libmbedtls-dev), native P-256 tests skipped");

interface Case {
  sig: Uint8Array;
  pk: Uint8Array;
  msg: Uint8Array;
}
const hex = (b: Uint8Array) => (b.length ? Buffer.from(b).toString("hex") : "-");
const flip = (b: Uint8Array, bit: number) => {
  const out = Uint8Array.from(b);
  out[bit >> 3] ^= 1 << (bit & 7);
  return out;
};
/** Deterministic bytes, so a failing case can be reproduced. */
function prng(label: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 32) out.set(createHash("sha256").update(`${label}/${i}`).digest().subarray(0, Math.min(32, length - i)), i);
  return out;
}
const pick = (label: string, n: number) => Buffer.from(prng(label, 4)).readUInt32LE(0) % n;

let driver = "";
function nativeVerdicts(cases: Case[]): boolean[] {
  const input = cases.map((c) => `${hex(c.sig)} ${hex(c.pk)} ${hex(c.msg)}\n`).join("");
  const lines = execFileSync(driver, [], { input, encoding: "utf8", maxBuffer: 1 << 24, env: { ...process.env, ASAN_OPTIONS: "detect_leaks=0" } }).trim().split("\n");
  expect(lines.length).toBe(cases.length);
  return lines.map((l) => {
    expect(l).toMatch(/^[01]$/);
    return l === "1";
  });
}

/** A key pair and signatures by node:crypto, in the protocol's encodings (what the server's keystore makes). */
function signer(label: string) {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return { pk: p256PublicPoint(publicKey), sign: (msg: Uint8Array) => new Uint8Array(sign("sha256", msg, { key: privateKey, dsaEncoding: "ieee-p1363" })), label };
}

describe.skipIf(!available && process.env.CI !== "true")("native ECDSA P-256 verify (C on libmbedtls, on this host)", () => {
  beforeAll(() => {
    driver = join(mkdtempSync(join(tmpdir(), "p256-")), "driver");
    execFileSync("gcc", ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-I", native, "-o", driver, join(root, "test/p256-driver.c"), join(native, "p256-verify.c"), "-lmbedcrypto"], { stdio: "pipe" });
  });

  it("accepts 120 signatures by node:crypto; one bit flipped in the signature, message or key is refused", { timeout: 60_000 }, () => {
    const cases: Case[] = [];
    const expected: boolean[] = [];
    const edges = [0, 1, 55, 56, 63, 64, 65, 119, 120, 4096];
    for (let k = 0; k < 6; k++) {
      const s = signer(`key ${k}`);
      for (let i = 0; i < 20; i++) {
        const n = k * 20 + i;
        const length = n < edges.length ? edges[n]! : pick(`length ${n}`, 1500);
        const msg = prng(`message ${n}`, length);
        const c = { sig: s.sign(msg), pk: s.pk, msg };
        cases.push(c, { ...c, sig: flip(c.sig, pick(`sig ${n}`, 512)) }, { ...c, pk: flip(c.pk, 8 + pick(`pk ${n}`, 512)) });
        expected.push(true, false, false);
        if (length) {
          cases.push({ ...c, msg: flip(msg, pick(`msg ${n}`, length * 8)) });
          expected.push(false);
        }
      }
    }
    expect(nativeVerdicts(cases)).toEqual(expected);
    // The simulator's verifier (Node's crypto) gives the same verdicts: the XS and Node runs stand for this C.
    expect(cases.map((c) => p256Node.verify(c.msg, c.sig, c.pk))).toEqual(expected);
  });

  it("refuses degenerate signatures and keys: r or s zero or the group order, another key's signature, the compressed-form prefix", () => {
    const s = signer("degenerate");
    const other = signer("other");
    const msg = prng("degenerate message", 100);
    const sig = s.sign(msg);
    const n = Buffer.from("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", "hex");
    const withR = (r: Uint8Array) => Uint8Array.from([...r, ...sig.subarray(32)]);
    const withS = (v: Uint8Array) => Uint8Array.from([...sig.subarray(0, 32), ...v]);
    const cases: Case[] = [
      { sig, pk: s.pk, msg },
      { sig: withR(new Uint8Array(32)), pk: s.pk, msg },
      { sig: withS(new Uint8Array(32)), pk: s.pk, msg },
      { sig: withR(n), pk: s.pk, msg },
      { sig: withS(n), pk: s.pk, msg },
      { sig: new Uint8Array(64).fill(0xff), pk: s.pk, msg },
      { sig, pk: other.pk, msg },
      { sig, pk: Uint8Array.from([0x02, ...s.pk.subarray(1)]), msg },
      { sig, pk: new Uint8Array(65), msg },
    ];
    expect(nativeVerdicts(cases)).toEqual(cases.map((_, i) => i === 0));
  });

  it("measures a verify on this host (printed)", () => {
    const s = signer("bench");
    const msg = prng("bench message", 1000);
    const out = execFileSync(driver, ["--bench", "50"], { input: `${hex(s.sign(msg))} ${hex(s.pk)} ${hex(msg)}\n`, encoding: "utf8" });
    console.log(`p256_verify on this host (libmbedtls 2.28, -O2): ${out.trim()}`);
    expect(out).toMatch(/^1 /);
  });
});
