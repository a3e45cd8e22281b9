import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { seededRandom } from "../host-sim/device/sim-device";
import { describe, expect, it } from "vitest";
import {
  APP_DESC_MAGIC,
  APP_DESC_OFFSET,
  ChipId,
  ESP_IMAGE_MAGIC,
  ImageVerifyError,
  buildAppImage,
  chipName,
  imageChecksum,
  inspectImage,
  readAppDesc,
  readSimPayload,
  verifyImage,
  verifyImageBytes,
} from "../esp-image/app-image";
import type { Behaviour, ImageReader, VerifyOptions } from "../esp-image/app-image";

const KiB = 1024;
const MiB = 1024 * KiB;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest();

/** Runs verifyImageBytes and returns the failed check name (or "ok"). */
function checkOf(img: Uint8Array, opts?: VerifyOptions): string {
  try {
    verifyImageBytes(img, opts);
    return "ok";
  } catch (e) {
    if (e instanceof ImageVerifyError) return e.check;
    throw e;
  }
}

/** Re-computes checksum byte and appended SHA-256 after a deliberate edit. */
function reseal(img: Uint8Array): Uint8Array {
  const { info } = inspectImage(img);
  const cs = info.checksumOffset!;
  img[cs] = info.computedChecksum!;
  img.set(sha256(img.subarray(0, cs + 1)), cs + 1);
  return img;
}

const u32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getUint32(o, true);
const setU32 = (b: Uint8Array, o: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint32(o, v, true);
const setU16 = (b: Uint8Array, o: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint16(o, v, true);

/** Offset of segment i's 8-byte header in a well-formed image. */
function segHeaderOffset(img: Uint8Array, i: number): number {
  return verifyImageBytes(img).segments[i]!.dataOffset - 8;
}

/** Deterministic PRNG (mulberry32, the simulator's own) for the fuzz tests. */
const rng = seededRandom;

const base = buildAppImage({ version: "1.2.3" });

describe("chip ids", () => {
  it("maps ids to names both ways", () => {
    expect(ChipId.ESP32).toBe(0);
    expect(ChipId["ESP32-S3"]).toBe(9);
    expect(ChipId["ESP32-C5"]).toBe(0x17);
    expect(chipName(0)).toBe("ESP32");
    expect(chipName(0x12)).toBe("ESP32-P4");
    expect(chipName(0x7777)).toMatch(/unknown/);
  });
});

describe("checksum", () => {
  it("matches a hand-computed vector on a hand-made image", () => {
    // One DRAM segment (not flash-mapped) with 8 data bytes.
    const data = [0x01, 0x02, 0x03, 0x04, 0x10, 0x20, 0x30, 0x40];
    // 0xEF ^ (1^2^3^4 = 0x04) ^ (0x10^0x20^0x30^0x40 = 0x40) = 0xEF ^ 0x44 = 0xAB
    const expected = 0xab;
    const img = new Uint8Array(0x30 + 32);
    img[0] = ESP_IMAGE_MAGIC;
    img[1] = 1; // segment count
    img[23] = 1; // hash_appended
    setU32(img, 24, 0x3ffb0000);
    setU32(img, 28, data.length);
    img.set(data, 32);
    // Segments end at 0x28; (0x28 + pad) % 16 == 0 with pad ≥ 1 → pad 8, checksum at 0x2F.
    img[0x2f] = expected;
    img.set(sha256(img.subarray(0, 0x30)), 0x30);

    expect(imageChecksum(Uint8Array.from(data))).toBe(expected);
    const info = verifyImageBytes(img);
    expect(info.computedChecksum).toBe(expected);
    expect(info.storedChecksum).toBe(expected);
    expect(info.checksumOffset).toBe(0x2f);
    expect(info.length).toBe(0x50);
    expect(info.storedSha256).toBe(info.computedSha256);
    expect(info.appDesc).toBeNull();
    expect(info.segments).toEqual([{ index: 0, loadAddr: 0x3ffb0000, dataLen: 8, dataOffset: 32, region: "DRAM" }]);

    // Same image without the appended hash ends at the checksum block.
    const noHash = img.slice(0, 0x30);
    noHash[23] = 0;
    const info2 = verifyImageBytes(noHash);
    expect(info2.length).toBe(0x30);
    expect(info2.storedSha256).toBeUndefined();

    img[0x2f] = expected ^ 1;
    expect(checkOf(img)).toBe("checksum");
  });

  it("equals IDF's word-wise XOR folded to a byte", () => {
    const data = base.subarray(0x20, 0x20 + 4096);
    let word = 0xef;
    for (let i = 0; i < data.length; i += 4) word = (word ^ u32(data, i)) >>> 0;
    const folded = (word >>> 24) ^ ((word >>> 16) & 0xff) ^ ((word >>> 8) & 0xff) ^ (word & 0xff);
    expect(imageChecksum(data)).toBe(folded);
  });
});

describe("buildAppImage → verifyImage round trip", () => {
  for (const [label, size] of [
    ["64 KiB", 64 * KiB],
    ["256 KiB", 256 * KiB],
    ["1 MiB", 1 * MiB],
    ["4 MiB-ish", 4 * MiB - 12345],
  ] as const) {
    it(`builds a valid ${label} image`, () => {
      const img = buildAppImage({ version: `v-${size}`, size });
      // Smallest image of the layout ≥ size: within one 16-byte checksum block, or the ~64 KiB minimum.
      expect(img.length).toBeGreaterThanOrEqual(size);
      if (size > 128 * KiB) expect(img.length - size).toBeLessThan(16);
      const info = verifyImageBytes(img, { partitionSize: Math.max(1 * MiB, img.length) });
      expect(info.length).toBe(img.length);
      expect(info.storedChecksum).toBe(info.computedChecksum);
      expect(info.storedSha256).toBe(info.computedSha256);
      expect(info.computedSha256).toBe(sha256(img.subarray(0, info.checksumOffset + 1)).toString("hex"));
      expect(info.header).toMatchObject({ magic: 0xe9, spiMode: 2, spiSpeed: 0, spiSize: 2, wpPin: 0xee, chipId: 0, hashAppended: true });
      expect(info.header.segmentCount).toBe(info.segments.length);
      expect(info.segments.length).toBeLessThanOrEqual(16);
      expect(info.segments[0]).toMatchObject({ loadAddr: 0x3f400020, dataOffset: 0x20, region: "DROM" });
      expect(info.segments.at(-1)!.region).toBe("IROM");
      expect(info.segments.map((s) => s.region)).toContain("IRAM");
      for (const s of info.segments) {
        expect(s.dataLen % 4).toBe(0);
        if (s.region === "DROM" || s.region === "IROM") expect(s.dataOffset % 0x10000).toBe(s.loadAddr % 0x10000);
        if (s.region === "padding") expect(s.loadAddr).toBe(0);
      }
      // Entry point lies inside a loaded segment.
      const entry = info.header.entryAddr;
      expect(info.segments.some((s) => entry >= s.loadAddr && entry < s.loadAddr + s.dataLen)).toBe(true);
      expect(info.appDesc?.version).toBe(`v-${size}`);
      expect(info.sim).toEqual({ behaviour: "healthy" });
    });
  }

  it("fits a 1 MiB image exactly into a 1 MiB partition", () => {
    const img = buildAppImage({ version: "exact", size: 1 * MiB });
    expect(img.length).toBe(1 * MiB);
    expect(checkOf(img, { partitionSize: 1 * MiB })).toBe("ok");
  });

  it("still builds a valid (minimum) image for tiny sizes", () => {
    const img = buildAppImage({ version: "tiny", size: 100 });
    expect(img.length).toBeGreaterThan(0x10020);
    expect(checkOf(img)).toBe("ok");
  });

  it("is deterministic, and the seed changes the filler", () => {
    const a = buildAppImage({ version: "1.0.0", size: 100 * KiB });
    const b = buildAppImage({ version: "1.0.0", size: 100 * KiB });
    const c = buildAppImage({ version: "1.0.0", size: 100 * KiB, seed: 42 });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
    expect(checkOf(c)).toBe("ok");
  });

  it("rejects oversized fields and images", () => {
    expect(() => buildAppImage({ version: "x".repeat(32) })).toThrow(RangeError);
    expect(() => buildAppImage({ version: "x".repeat(31) })).not.toThrow();
    expect(() => buildAppImage({ version: "1", projectName: "p".repeat(32) })).toThrow(RangeError);
    expect(() => buildAppImage({ version: "1", sim: { blob: "z".repeat(600) } })).toThrow(RangeError);
    expect(() => buildAppImage({ version: "1", size: 8 * MiB })).toThrow(RangeError);
  });
});

describe("app descriptor", () => {
  it("is at 0x20 with the fields the build asked for", () => {
    const img = buildAppImage({
      version: "2.5.0-rc1",
      projectName: "my-proj",
      secureVersion: 7,
      time: "12:34:56",
      date: "Mar  4 2026",
    });
    // Raw bytes, per esp_app_desc_t: magic, secure_version, version @0x30, project @0x50, idf_ver @0x90.
    expect(u32(img, 0x20)).toBe(APP_DESC_MAGIC);
    expect(u32(img, 0x24)).toBe(7);
    expect(Buffer.from(img.subarray(0x30, 0x39)).toString("latin1")).toBe("2.5.0-rc1");
    expect(img[0x39]).toBe(0);
    expect(Buffer.from(img.subarray(0x50, 0x57)).toString("latin1")).toBe("my-proj");
    expect(Buffer.from(img.subarray(0x90, 0x94)).toString("latin1")).toBe("v6.0");

    const desc = readAppDesc(img.subarray(0, APP_DESC_OFFSET + 256))!;
    expect(desc).toMatchObject({
      magicWord: APP_DESC_MAGIC,
      secureVersion: 7,
      version: "2.5.0-rc1",
      projectName: "my-proj",
      time: "12:34:56",
      date: "Mar  4 2026",
      idfVer: "v6.0",
    });
    expect(desc.appElfSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(verifyImageBytes(img).appDesc).toEqual(desc);
  });

  it("defaults project name, secure version and idf version", () => {
    expect(readAppDesc(base)).toMatchObject({ projectName: "ota-sim-app", secureVersion: 0, idfVer: "v6.0", version: "1.2.3" });
  });

  it("readAppDesc returns null on a wrong magic word or short input", () => {
    const img = base.slice();
    img[0x20] ^= 0xff;
    expect(readAppDesc(img)).toBeNull();
    expect(readAppDesc(base.subarray(0, 0x11f))).toBeNull();
    expect(readAppDesc(new Uint8Array(0))).toBeNull();
  });

  it("is not checked by esp_image_verify on ESP32: a bad magic word still verifies, appDesc null", () => {
    const img = base.slice();
    img[0x20] ^= 0xff;
    reseal(img);
    const info = verifyImageBytes(img);
    expect(info.appDesc).toBeNull();
  });
});

describe("sim payload", () => {
  const behaviours: Behaviour[] = ["healthy", "fail-self-test", "crash", "hang"];
  for (const behaviour of behaviours) {
    it(`reads back behaviour "${behaviour}"`, () => {
      const img = buildAppImage({ version: "1.0.0", behaviour, sim: { bootDelayMs: 250, note: "héllo" } });
      expect(Buffer.from(img.subarray(0x120, 0x128)).toString("latin1")).toBe("OTASIMFW");
      const sim = readSimPayload(img);
      expect(sim).toEqual({ behaviour, bootDelayMs: 250, note: "héllo" });
      expect(verifyImageBytes(img).sim).toEqual(sim);
      expect(inspectImage(img).info.sim).toEqual(sim);
    });
  }

  it("keeps the whole block within 512 bytes and inside segment 0", () => {
    const info = verifyImageBytes(base);
    const len = base[0x128]! | (base[0x129]! << 8);
    expect(10 + len).toBeLessThanOrEqual(512);
    expect(0x120 + 10 + len).toBeLessThanOrEqual(info.segments[0]!.dataOffset + info.segments[0]!.dataLen);
  });

  it("the behaviour option wins over sim.behaviour", () => {
    const img = buildAppImage({ version: "1", behaviour: "crash", sim: { behaviour: "healthy" } });
    expect(readSimPayload(img)?.behaviour).toBe("crash");
  });

  it("returns null without a marker or with bad JSON", () => {
    expect(readSimPayload(new Uint8Array(0x200))).toBeNull();
    const img = base.slice();
    img[0x12a] = 0x7b ^ 0xff; // break the opening brace
    expect(readSimPayload(img)).toBeNull();
  });
});

describe("verifier checks (each fails when broken)", () => {
  const info = verifyImageBytes(base);
  const irom = info.segments.at(-1)!;
  const iramHdr = segHeaderOffset(base, 1);

  it("partition-size: partition larger than 16 MB", () => {
    expect(checkOf(base, { partitionSize: 16 * MiB })).toBe("ok");
    expect(checkOf(base, { partitionSize: 16 * MiB + 4096 })).toBe("partition-size");
  });

  it("magic: header magic byte", () => {
    const img = base.slice();
    img[0] = 0xff;
    expect(checkOf(img)).toBe("magic");
    expect(() => verifyImageBytes(img)).toThrow(/magic.*0xff/);
  });

  it("chip-id: image for another chip", () => {
    expect(checkOf(base, { expectedChipId: ChipId["ESP32-S3"] })).toBe("chip-id");
    const s3 = buildAppImage({ version: "1", chipId: ChipId["ESP32-S3"] });
    expect(checkOf(s3)).toBe("chip-id");
    expect(() => verifyImageBytes(s3)).toThrow(/expected 0 \(ESP32\), found 9 \(ESP32-S3\)/);
    expect(checkOf(s3, { expectedChipId: ChipId["ESP32-S3"] })).toBe("ok");
  });

  it("chip-revision: max chip rev exceeded", () => {
    expect(info.header.maxChipRevFull).toBe(399);
    expect(checkOf(base, { chipRevision: 399 })).toBe("ok");
    expect(checkOf(base, { chipRevision: 400 })).toBe("chip-revision");
    const img = base.slice();
    setU16(img, 17, 299); // max v2.99
    reseal(img);
    expect(checkOf(img)).toBe("chip-revision"); // default chip v3.0
    expect(checkOf(img, { chipRevision: 201 })).toBe("ok");
  });

  it("chip-revision: max 0 / 0xFFFF means not set", () => {
    for (const max of [0, 0xffff]) {
      const img = base.slice();
      setU16(img, 17, max);
      reseal(img);
      expect(checkOf(img, { chipRevision: 999 })).toBe("ok");
    }
  });

  it("chip-revision: min chip rev not met", () => {
    const img = base.slice();
    setU16(img, 15, 301); // min v3.1
    reseal(img);
    expect(checkOf(img)).toBe("chip-revision");
    expect(checkOf(img, { chipRevision: 301 })).toBe("ok");
  });

  it("segment-count: more than 16 segments", () => {
    const img = base.slice();
    img[1] = 17;
    expect(checkOf(img)).toBe("segment-count");
  });

  it("segment-length: length not a multiple of 4, or ≥ 16 MB", () => {
    const img = base.slice();
    setU32(img, iramHdr + 4, 0x3fe);
    expect(checkOf(img)).toBe("segment-length");
    setU32(img, iramHdr + 4, 0x1000000);
    expect(checkOf(img)).toBe("segment-length");
  });

  it("segment-alignment: mapped segment misaligned against its 64 KiB page", () => {
    const drom = base.slice();
    setU32(drom, 0x18, 0x3f400024);
    expect(checkOf(drom)).toBe("segment-alignment");
    const iromImg = base.slice();
    setU32(iromImg, irom.dataOffset - 8, irom.loadAddr + 4);
    expect(checkOf(iromImg)).toBe("segment-alignment");
    expect(() => verifyImageBytes(iromImg)).toThrow(/segment 3 load address 0x400d0024/);
  });

  it("segment-alignment: only mapped segments are checked; headers are hashed, not checksummed", () => {
    const iram = base.slice();
    setU32(iram, iramHdr, 0x40080004); // RAM segment: any address is fine for the rule
    expect(checkOf(iram)).toBe("sha256");
    const iromPage = base.slice();
    setU32(iromPage, irom.dataOffset - 8, irom.loadAddr + 0x10000); // same offset mod 64 KiB
    expect(checkOf(iromPage)).toBe("sha256");
    expect(checkOf(reseal(iromPage))).toBe("ok");
  });

  it("segment-bounds: segment data runs past the partition", () => {
    expect(checkOf(base, { partitionSize: 0x8000 })).toBe("segment-bounds");
  });

  it("truncated: image cut short", () => {
    expect(checkOf(base.subarray(0, irom.dataOffset + 100))).toBe("truncated");
    expect(checkOf(base.subarray(0, base.length - 1))).toBe("truncated"); // hash short
    expect(checkOf(base.subarray(0, 10))).toBe("truncated");
    expect(checkOf(new Uint8Array(0))).toBe("truncated");
  });

  it("checksum: checksum byte flipped", () => {
    const img = base.slice();
    img[info.checksumOffset] ^= 0x01;
    expect(checkOf(img)).toBe("checksum");
    expect(() => verifyImageBytes(img)).toThrow(/calculated 0x[0-9a-f]{2}, read 0x[0-9a-f]{2}/);
  });

  it("sha256: appended hash byte flipped", () => {
    const img = base.slice();
    img[img.length - 1] ^= 0x80;
    expect(checkOf(img)).toBe("sha256");
  });

  it("a flipped data byte is caught by the checksum, and a checksum-neutral pair by the hash", () => {
    for (const at of [0x1000, irom.dataOffset + 16]) {
      const one = base.slice();
      one[at] ^= 0x10;
      expect(checkOf(one)).toBe("checksum");
    }
    const pair = base.slice();
    pair[0x1000] ^= 0x10;
    pair[irom.dataOffset + 16] ^= 0x10; // XOR cancels out in the checksum
    expect(checkOf(pair)).toBe("sha256");
  });

  it("image-size: image larger than partitionSize", () => {
    expect(checkOf(base, { partitionSize: base.length })).toBe("ok");
    expect(checkOf(base, { partitionSize: base.length - 1 })).toBe("image-size");
    expect(checkOf(base, { partitionSize: info.checksumOffset + 1 })).toBe("image-size");
  });

  it("reports the first failure in IDF order", () => {
    const img = base.slice();
    img[info.checksumOffset] ^= 1; // checksum
    img[1] = 17; // segment count, checked earlier
    expect(checkOf(img, { expectedChipId: 9 })).toBe("chip-id"); // earlier still
    expect(checkOf(img)).toBe("segment-count");
  });

  it("error messages name the check", () => {
    try {
      verifyImageBytes(base, { partitionSize: 0x8000 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ImageVerifyError);
      expect((e as ImageVerifyError).check).toBe("segment-bounds");
      expect((e as Error).message).toMatch(/^segment-bounds: /);
    }
  });
});

describe("streaming verification", () => {
  it("reads a 4 MiB image in bounded chunks through an ImageReader", () => {
    const img = buildAppImage({ version: "big", size: 4 * MiB });
    // A partition with erased flash after the image, as on a device.
    const partition = new Uint8Array(6 * MiB).fill(0xff);
    partition.set(img);
    let reads = 0;
    let maxRead = 0;
    let total = 0;
    const reader: ImageReader = (offset, length) => {
      reads++;
      maxRead = Math.max(maxRead, length);
      total += length;
      expect(offset + length).toBeLessThanOrEqual(partition.length);
      return partition.slice(offset, offset + length); // copies, like a flash read
    };
    const info = verifyImage(reader, { partitionSize: partition.length });
    expect(info.length).toBe(img.length);
    expect(info.appDesc?.version).toBe("big");
    expect(maxRead).toBeLessThanOrEqual(64 * KiB);
    expect(reads).toBeGreaterThan(1000);
    expect(total).toBeLessThan(img.length + 4 * KiB); // each byte read about once
  });
});

describe("inspectImage", () => {
  it("returns full info and no error for a valid image", () => {
    const { info, error } = inspectImage(base);
    expect(error).toBeUndefined();
    expect(info).toEqual(verifyImageBytes(base));
  });

  it("reports the first error but still parses segments, app desc and sim", () => {
    const img = base.slice();
    img[img.length - 80] ^= 0xff; // IROM data → checksum
    const { info, error } = inspectImage(img, { expectedChipId: ChipId["ESP32-C3"] });
    expect(error?.check).toBe("chip-id");
    expect(info.segments).toHaveLength(4);
    expect(info.computedChecksum).not.toBe(info.storedChecksum);
    expect(info.appDesc?.version).toBe("1.2.3");
    expect(info.sim?.behaviour).toBe("healthy");
  });

  it("never throws on empty input or random garbage", () => {
    expect(inspectImage(new Uint8Array(0)).error?.check).toBe("truncated");
    const rand = rng(1234);
    for (let n = 0; n < 400; n++) {
      const len = Math.floor(rand() * (n % 4 === 0 ? 70_000 : 2048));
      const buf = new Uint8Array(len);
      for (let i = 0; i < len; i++) buf[i] = Math.floor(rand() * 256);
      if (len > 0 && n % 2 === 0) buf[0] = ESP_IMAGE_MAGIC; // get past the magic check
      if (len > 1 && n % 3 === 0) buf[1] = Math.floor(rand() * 5);
      const opts = n % 5 === 0 ? { partitionSize: Math.floor(rand() * 0x2000000) } : {};
      const r = inspectImage(buf, opts);
      expect(r.error).toBeInstanceOf(ImageVerifyError);
    }
  });

  it("never throws on randomly corrupted real images", () => {
    const rand = rng(99);
    for (let n = 0; n < 200; n++) {
      const img = base.slice(0, Math.floor(rand() * base.length) + 1);
      for (let k = 0; k < 4; k++) img[Math.floor(rand() * Math.min(img.length, 0x200))] = Math.floor(rand() * 256);
      expect(() => inspectImage(img)).not.toThrow();
    }
  });
});

// A real ESP-IDF-built ESP32 app (see test/fixtures/README.md). The binary is not
// committed; point ESP32_REAL_APP_BIN at it or drop it at the fixture path.
const realPath = process.env.ESP32_REAL_APP_BIN ?? fileURLToPath(new URL("./fixtures/real-esp32-app.bin", import.meta.url));
describe.skipIf(!existsSync(realPath))("real ESP-IDF v5.2.2 image (esp-serial-flasher hello_world)", () => {
  it("verifies and reads its app descriptor", () => {
    const bytes = new Uint8Array(readFileSync(realPath));
    expect(sha256(bytes).toString("hex")).toBe("d98bfba1b7e4343a7d68d492a45d51248a6842ba9cb749de0d573506bb420d33");
    const info = verifyImageBytes(bytes, { partitionSize: 1 * MiB });
    expect(info.length).toBe(bytes.length);
    expect(info.header).toMatchObject({ chipId: 0, spiMode: 2, maxChipRevFull: 399, hashAppended: true, entryAddr: 0x40080af0 });
    expect(info.segments.map((s) => s.region)).toEqual(["DROM", "DRAM", "IRAM", "padding", "IROM"]);
    expect(info.segments[4]).toMatchObject({ loadAddr: 0x400d0020, dataOffset: 0x10020 });
    expect(info.appDesc).toMatchObject({
      magicWord: APP_DESC_MAGIC,
      secureVersion: 0,
      version: "v1.4.1-2-g0296947-dirty",
      projectName: "hello_world",
      time: "16:23:40",
      date: "Jul 25 2024",
      idfVer: "v5.2.2-dirty",
    });
    expect(info.sim).toBeNull();
    const flipped = bytes.slice();
    flipped[0x5000] ^= 1;
    expect(checkOf(flipped)).toBe("checksum");
  });
});

describe("imageChecksum word-wise fast path", () => {
  it("equals the byte-wise XOR for every length and alignment", () => {
    let seed = 1;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    for (let t = 0; t < 300; t++) {
      const buf = new Uint8Array(1 + ((t * 37) % 300)).map(rnd);
      const data = buf.subarray(t % 5);
      let c = 0xef;
      for (const b of data) c ^= b;
      expect(imageChecksum(data)).toBe(c);
    }
  });
});
