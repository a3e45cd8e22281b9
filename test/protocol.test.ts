import { describe, expect, it } from "vitest";
import nacl from "tweetnacl";
import {
  base64Decode, base64Encode, canonicalBytes, canonicalJson, compareVersions, hexEncode, isAllowedTransition,
  isNewerVersion, manifestSigningBytes, parseStatusTopic, utf8Decode, utf8Encode, versionInRange,
  type UpdateManifest,
} from "../device/protocol";

function randomString(rng: () => number): string {
  let s = "";
  const n = Math.floor(rng() * 12);
  for (let i = 0; i < n; i++) {
    const r = rng();
    if (r < 0.5) s += String.fromCharCode(0x20 + Math.floor(rng() * 95));
    else if (r < 0.6) s += String.fromCharCode(Math.floor(rng() * 0x20));
    else if (r < 0.8) s += String.fromCharCode(0x80 + Math.floor(rng() * 0xd000));
    else s += String.fromCodePoint(0x10000 + Math.floor(rng() * 0xfffff));
  }
  return s;
}

function mulberry32(seed: number) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("utf8 and base64", () => {
  it("match Node's encoders on random input", () => {
    const rng = mulberry32(1);
    for (let i = 0; i < 500; i++) {
      const s = randomString(rng);
      const bytes = utf8Encode(s);
      expect(Buffer.from(bytes).equals(Buffer.from(s, "utf8"))).toBe(true);
      expect(utf8Decode(bytes)).toBe(s);
      const raw = new Uint8Array(Math.floor(rng() * 40)).map(() => Math.floor(rng() * 256));
      expect(base64Encode(raw)).toBe(Buffer.from(raw).toString("base64"));
      expect(Buffer.from(base64Decode(base64Encode(raw))).equals(Buffer.from(raw))).toBe(true);
    }
  });

  it("reject lone surrogates, bad UTF-8 and bad base64", () => {
    expect(() => utf8Encode("a\ud800b")).toThrow(RangeError);
    expect(() => utf8Decode(new Uint8Array([0xc0, 0x80]))).toThrow(RangeError); // overlong NUL
    expect(() => utf8Decode(new Uint8Array([0xe2, 0x82]))).toThrow(RangeError); // truncated
    expect(() => base64Decode("abc")).toThrow(RangeError);
    expect(() => base64Decode("ab!=")).toThrow(RangeError);
    expect(hexEncode(new Uint8Array([0, 15, 255]))).toBe("000fff");
  });
});

describe("canonical form", () => {
  it("sorts keys recursively, drops whitespace and matches the README example bytes", () => {
    const v = { b: [1, "é"], a: null };
    expect(canonicalJson(v)).toBe('{"a":null,"b":[1,"é"]}');
    expect(hexEncode(canonicalBytes(v))).toBe("7b2261223a6e756c6c2c2262223a5b312c22c3a9225d7d");
  });

  it("equals JSON.stringify of a key-sorted copy for random values (JCS subset)", () => {
    const rng = mulberry32(7);
    const gen = (depth: number): unknown => {
      const r = rng();
      if (depth > 3 || r < 0.3) return randomString(rng);
      if (r < 0.4) return Math.floor((rng() - 0.5) * 1e12);
      if (r < 0.45) return rng() < 0.5;
      if (r < 0.5) return null;
      if (r < 0.7) return Array.from({ length: Math.floor(rng() * 4) }, () => gen(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = 0; i < rng() * 5; i++) o[randomString(rng)] = gen(depth + 1);
      return o;
    };
    const sortDeep = (x: unknown): unknown =>
      Array.isArray(x) ? x.map(sortDeep)
        : x && typeof x === "object"
          ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sortDeep((x as Record<string, unknown>)[k])]))
          : x;
    for (let i = 0; i < 300; i++) {
      const v = gen(0);
      expect(canonicalJson(v)).toBe(JSON.stringify(sortDeep(v)));
      expect(canonicalJson(JSON.parse(canonicalJson(v)))).toBe(canonicalJson(v)); // parse → canonicalise is exact
    }
  });

  it("sorts by UTF-16 code units, not code points", () => {
    // U+FF61 (one unit 0xFF61) sorts after U+1F600 (surrogates 0xD83D…) in code-unit order.
    expect(canonicalJson({ "\uff61": 1, "\u{1f600}": 2 })).toBe('{"\u{1f600}":2,"\uff61":1}');
  });

  it("refuses values outside the subset", () => {
    expect(() => canonicalJson({ a: 1.5 })).toThrow(TypeError);
    expect(() => canonicalJson({ a: undefined })).toThrow(TypeError);
    expect(() => canonicalJson({ a: NaN })).toThrow(TypeError);
    expect(() => canonicalJson(new Date())).toThrow(TypeError);
    expect(() => canonicalJson("\udc00")).toThrow(TypeError);
    expect(canonicalJson(-0)).toBe("0");
    expect(canonicalJson("\u0001\n\"\\")).toBe('"\\u0001\\n\\"\\\\"');
  });

  it("an ed25519 signature over the canonical bytes survives a JSON round trip with reordered keys", () => {
    const keys = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(3));
    const manifest: UpdateManifest = {
      manifest_version: 1, update_id: "upd_1", device_id: "d1", firmware_id: "fw_v1.2.0", version: "1.2.0",
      size: 10, sha256: "0".repeat(64), device_model: "M", min_hardware_version: null, max_hardware_version: null,
      chip_id: 0, secure_version: 0, download_url: "http://x/y", fallback_url: null, issued_at: "2025-01-01T00:00:00.000Z",
      expires_at: "2025-01-02T00:00:00.000Z", rollback: false, mandatory: false, priority: "normal",
      pre_update_commands: ["backup_config"], post_update_commands: [], release_signature: null, release_key_id: null,
    };
    const sig = nacl.sign.detached(manifestSigningBytes(manifest), keys.secretKey);
    const reordered = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(manifest).reverse()))) as UpdateManifest;
    expect(nacl.sign.detached.verify(manifestSigningBytes(reordered), sig, keys.publicKey)).toBe(true);
    const tampered = { ...reordered, version: "1.2.1" };
    expect(nacl.sign.detached.verify(manifestSigningBytes(tampered), sig, keys.publicKey)).toBe(false);
  });
});

describe("versions", () => {
  it("compares semver-ish versions", () => {
    expect(compareVersions("1.2.0", "1.10.0")).toBe(-1);
    expect(compareVersions("v1.2", "1.2.0")).toBe(0);
    expect(compareVersions("1.2.0-rc.1", "1.2.0")).toBe(-1);
    expect(compareVersions("1.2.0-rc.2", "1.2.0-rc.10")).toBe(-1);
    expect(compareVersions("1.2.0-alpha", "1.2.0-1")).toBe(1);
    expect(compareVersions("1.2.0+build5", "1.2.0")).toBe(0);
    expect(compareVersions("banana", "1.0")).toBeNull();
    expect(isNewerVersion("1.2.1", "1.2.0")).toBe(true);
    expect(isNewerVersion("1.2.0", "1.2.0")).toBe(false);
    expect(isNewerVersion("x", "1.0")).toBe(false);
    expect(versionInRange("2.0", "1.0", "2.0")).toBe(true);
    expect(versionInRange("2.1", "1.0", "2.0")).toBe(false);
    expect(versionInRange("0.9", "1.0", null)).toBe(false);
  });
});

describe("statuses and topics", () => {
  it("rejects backwards transitions and accepts skipped steps", () => {
    expect(isAllowedTransition("scheduled", "completed")).toBe(true);
    expect(isAllowedTransition("installing", "downloading")).toBe(false);
    expect(isAllowedTransition("scheduled", "rolled_back")).toBe(false);
    expect(isAllowedTransition("completed", "failed")).toBe(false);
    expect(parseStatusTopic("devices/d-1/ota/status")).toBe("d-1");
    expect(parseStatusTopic("devices/+/ota/status")).toBeNull();
  });
});

describe("platform independence", () => {
  it("device/protocol imports nothing from Node", async () => {
    const { readdirSync, readFileSync } = await import("node:fs");
    const dir = new URL("../device/protocol/", import.meta.url);
    for (const f of readdirSync(dir).filter((n) => n.endsWith(".ts"))) {
      const src = readFileSync(new URL(f, dir), "utf8").replace(/\/\/.*$/gm, ""); // comments may name what is banned
      expect(src, f).not.toMatch(/from\s+"node:|\bBuffer\b|\bTextEncoder\b|\bTextDecoder\b|\bprocess\.|\brequire\(/);
      for (const m of src.matchAll(/from\s+"([^"]+)"/g)) expect(m[1], f).toMatch(/^\.\//);
    }
  });
});
