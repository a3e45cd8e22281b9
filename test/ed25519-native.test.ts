// The ESP32's native ed25519 verify (device/esp32/native/ed25519-verify.c), compiled for this host with gcc (and
// ASan/UBSan when available) into test/ed25519-driver.c, must give tweetnacl's verdict on every input: RFC 8032
// vectors, 500 random signatures and their one-bit corruptions, non-canonical S, degenerate keys. Its worst-case
// stack is read from gcc's call graph.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nacl from "tweetnacl";
import { beforeAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const native = join(root, "device/esp32/native");
const sources = ["ed25519-verify.c", "ed25519-field.c", "ed25519-sha512.c"].map((f) => join(native, f));
const gccFlags = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-I", native];
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

function hasGcc(): boolean {
  try {
    execFileSync("gcc", ["--version"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}
const gccPresent = hasGcc();
if (!gccPresent && process.env.CI !== "true") console.log("ed25519-native: gcc not found, native ed25519 tests skipped");

interface Case {
  sig: Uint8Array;
  pk: Uint8Array;
  msg: Uint8Array;
}
const hex = (b: Uint8Array) => (b.length ? Buffer.from(b).toString("hex") : "-");
const bytes = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s/g, ""), "hex"));
const naclVerdict = (c: Case) => nacl.sign.detached.verify(c.msg, c.sig, c.pk);

// Two builds of the driver: "checked" with ASan/UBSan when this gcc has them, "fast" without (-O2 only), for the
// 2000-case run (the sanitizers make a verify about 5 times slower).
const drivers = { checked: "", fast: "" };
/** The C verdicts for the cases, one driver run (one line each). */
function nativeVerdicts(cases: Case[], build: keyof typeof drivers = "checked"): boolean[] {
  const driver = drivers[build];
  const input = cases.map((c) => `${hex(c.sig)} ${hex(c.pk)} ${hex(c.msg)}\n`).join("");
  const out = execFileSync(driver, [], { input, encoding: "utf8", maxBuffer: 1 << 24, env: { ...process.env, ASAN_OPTIONS: "detect_leaks=0" } });
  const lines = out.trim().split("\n");
  expect(lines.length).toBe(cases.length);
  return lines.map((l) => {
    expect(l).toMatch(/^[01]$/);
    return l === "1";
  });
}

function withBitFlipped(b: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(b);
  out[bit >> 3] ^= 1 << (bit & 7);
  return out;
}

/** Deterministic bytes, so a failing case can be reproduced. */
function prng(label: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 32) out.set(createHash("sha256").update(`${label}/${i}`).digest().subarray(0, Math.min(32, length - i)), i);
  return out;
}

function scalar(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}
function withS(sig: Uint8Array, s: bigint): Uint8Array {
  const out = Uint8Array.from(sig);
  for (let i = 32; i < 64; i++, s >>= 8n) out[i] = Number(s & 0xffn);
  return out;
}

// RFC 8032 section 7.1, TEST 1, 2, 3 and 1024 (the 1023-byte message): seed, public key, message, signature.
const RFC8032 = [
  ["9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"],
  ["4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"],
  ["c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
    "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"],
  ["f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5", "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
    `08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed185ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f27088d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128bab27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb751fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34dff7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e488acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5fb93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380db2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0`,
    "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"],
].map(([seed, pk, msg, sig]) => ({ seed: bytes(seed), pk: bytes(pk), msg: bytes(msg), sig: bytes(sig) }));

describe.skipIf(!gccPresent && process.env.CI !== "true")("native ed25519 verify (C, on this host)", () => {
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), "ed25519-"));
    const probe = join(dir, "probe");
    let sanitizers: string[] = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"];
    try {
      execFileSync("gcc", [...sanitizers, "-x", "c", "-", "-o", probe], { input: "int main(void){return 0;}", stdio: "pipe" });
      execFileSync(probe, { stdio: "pipe" });
    } catch {
      sanitizers = [];
    }
    for (const [build, flags] of [["checked", sanitizers], ["fast", []]] as const) {
      drivers[build] = join(dir, `driver-${build}`);
      execFileSync("gcc", [...gccFlags, ...flags, "-o", drivers[build], join(root, "test/ed25519-driver.c"), ...sources], { stdio: "pipe" });
    }
  });

  it("accepts the RFC 8032 vectors (1, 2, 3 and the 1023-byte one) and refuses each with one bit flipped", () => {
    const cases: Case[] = [];
    for (const v of RFC8032) {
      const keys = nacl.sign.keyPair.fromSeed(v.seed); // the vectors are the RFC's: tweetnacl re-derives them
      expect(hex(keys.publicKey)).toBe(hex(v.pk));
      expect(hex(nacl.sign.detached(v.msg, keys.secretKey))).toBe(hex(v.sig));
      cases.push(v, { ...v, sig: withBitFlipped(v.sig, 77) }, { ...v, pk: withBitFlipped(v.pk, 3) });
      if (v.msg.length) cases.push({ ...v, msg: withBitFlipped(v.msg, v.msg.length * 8 - 1) });
    }
    expect(RFC8032[3].msg.length).toBe(1023);
    const verdicts = nativeVerdicts(cases);
    const originals = new Set<Case>(RFC8032);
    expect(verdicts).toEqual(cases.map((c) => originals.has(c)));
  });

  it("500 random signatures by tweetnacl verify; a one-bit flip in the signature, message or key is refused", { timeout: 120_000 }, () => {
    const cases: Case[] = [];
    const expected: boolean[] = [];
    // Lengths around the SHA-512 block (128 bytes, 112 for the length field once R || A take 64) and up to 8 KiB.
    const edges = [0, 1, 47, 48, 63, 64, 111, 112, 127, 128, 129, 191, 192, 255, 256, 8191];
    for (let i = 0; i < 500; i++) {
      const keys = nacl.sign.keyPair.fromSeed(prng(`seed ${i}`, 32));
      const length = i < edges.length ? edges[i] : Number(scalar(prng(`length ${i}`, 2)) % 1200n);
      const msg = prng(`message ${i}`, length);
      const c = { sig: nacl.sign.detached(msg, keys.secretKey), pk: keys.publicKey, msg };
      const bit = (n: number, what: string) => Number(scalar(prng(`${what} ${i}`, 4)) % BigInt(n));
      cases.push(c, { ...c, sig: withBitFlipped(c.sig, bit(512, "sig bit")) }, { ...c, pk: withBitFlipped(c.pk, bit(256, "pk bit")) });
      expected.push(true, false, false);
      if (length) {
        cases.push({ ...c, msg: withBitFlipped(msg, bit(length * 8, "msg bit")) });
        expected.push(false);
      }
    }
    expect(nativeVerdicts(cases, "fast")).toEqual(expected);
    expect(nativeVerdicts(cases.slice(0, 200), "checked")).toEqual(expected.slice(0, 200));
  });

  it("non-canonical S (S >= L) gets tweetnacl's verdict: S + kL still verifies (tweetnacl does not check S < L), other S do not", () => {
    const keys = nacl.sign.keyPair.fromSeed(prng("non-canonical", 32));
    const msg = prng("non-canonical message", 100);
    const sig = nacl.sign.detached(msg, keys.secretKey);
    const s = scalar(sig.subarray(32));
    const cases: Case[] = [];
    for (let k = 1n; s + k * L < 1n << 256n; k++) cases.push({ sig: withS(sig, s + k * L), pk: keys.publicKey, msg });
    for (const other of [L, L + 1n, (1n << 253n) + 1n, (1n << 256n) - 1n, s + L - 1n, s + (1n << 255n)])
      cases.push({ sig: withS(sig, other), pk: keys.publicKey, msg });
    const expected = cases.map(naclVerdict);
    expect(expected.filter(Boolean).length).toBeGreaterThan(10); // the S + kL family (k = 1..15)
    expect(expected.slice(-6).some(Boolean)).toBe(false);
    expect(nativeVerdicts(cases)).toEqual(expected);
  });

  it("degenerate keys and signatures get tweetnacl's verdict (zero, all-ones, non-point and small-order keys)", () => {
    const msg = prng("degenerate", 40);
    const good = nacl.sign.keyPair.fromSeed(prng("degenerate seed", 32));
    const goodSig = nacl.sign.detached(msg, good.secretKey);
    const identity = bytes("01" + "00".repeat(31));
    const keys = [new Uint8Array(32), new Uint8Array(32).fill(0xff), identity, bytes("02" + "00".repeat(31)), bytes("ec" + "ff".repeat(30) + "7f"), good.publicKey];
    const sigs = [new Uint8Array(64), new Uint8Array(64).fill(0xff), Uint8Array.from([...identity, ...new Uint8Array(32)]), goodSig];
    const cases = keys.flatMap((pk) => sigs.map((sig) => ({ sig, pk, msg })));
    const expected = cases.map(naclVerdict);
    expect(expected.filter(Boolean).length).toBeGreaterThan(1); // the good pair, and the identity key with (R = identity, S = 0)
    expect(nativeVerdicts(cases)).toEqual(expected);
  });

  it("needs at most 2 KiB of stack (gcc's call graph of ed25519_verify, x86-64 -O2)", () => {
    const dir = mkdtempSync(join(tmpdir(), "ed25519-stack-"));
    for (const file of sources) execFileSync("gcc", [...gccFlags, "-c", "-fcallgraph-info=su", "-o", join(dir, file.replace(/.*\//, "") + ".o"), file], { cwd: dir, stdio: "pipe" });
    const frames = new Map<string, number>();
    const calls = new Map<string, Set<string>>();
    const name = (title: string) => title.replace(/^.*:/, "");
    for (const ci of readdirSync(dir).filter((f) => f.endsWith(".ci"))) {
      const text = readFileSync(join(dir, ci), "utf8");
      for (const m of text.matchAll(/node: \{ title: "([^"]+)" label: "[^"]*\\n(\d+) bytes \((static|dynamic[^)]*)\)"/g)) {
        expect(m[3], `${m[1]} has a static frame`).toBe("static");
        frames.set(name(m[1]), Number(m[2]));
      }
      for (const m of text.matchAll(/edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"/g))
        calls.set(name(m[1]), (calls.get(name(m[1])) ?? new Set()).add(name(m[2])));
    }
    const deepest = (fn: string, path: string[] = []): number => {
      expect(path, "no recursion").not.toContain(fn);
      const callees = [...(calls.get(fn) ?? [])].filter((c) => !["memcpy", "memset", "memmove"].includes(c));
      for (const c of callees) expect(frames.has(c), `frame of ${c}`).toBe(true);
      return (frames.get(fn) ?? 0) + Math.max(0, ...callees.map((c) => deepest(c, [...path, fn])));
    };
    const worst = deepest("ed25519_verify");
    console.log(`ed25519_verify worst-case stack: ${worst} bytes`);
    expect(worst).toBeGreaterThan(frames.get("ed25519_verify")!);
    expect(worst).toBeLessThanOrEqual(2048);
  });
});
