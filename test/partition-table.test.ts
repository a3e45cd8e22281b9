import { TWO_OTA_CSV } from "./helpers/sim";
import { describe, it, expect } from "vitest";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  AppSubtype,
  DataSubtype,
  PARTITION_TABLE_MAX_LEN,
  PARTITION_TABLE_OFFSET,
  PartitionTableError,
  PartitionType,
  buildPartitionTableBinary,
  findByName,
  findPartition,
  formatTable,
  otaAppPartitions,
  parsePartitionCsv,
  parsePartitionCsvWithWarnings,
  parseSize,
  readPartitionTable,
  subtypeName,
  typeName,
  verifyPartitionTable,
} from "../host-sim/esp/partition-table";
import type { ParseOptions, Partition } from "../host-sim/esp/partition-table";

const MB = 1024 * 1024;
const HEADER = "# Name,   Type, SubType, Offset,   Size, Flags";

// ESP-IDF components/partition_table/partitions_two_ota.csv (in ./helpers/sim) and partitions_singleapp.csv, as shipped.
const SINGLEAPP_CSV = `# Name,   Type, SubType, Offset,  Size, Flags
# Note: if you have increased the bootloader size, make sure to update the offsets to avoid overlap
nvs,      data, nvs,     ,        0x6000,
phy_init, data, phy,     ,        0x1000,
factory,  app,  factory, ,        1M,
`;

function csv(...rows: string[]): string {
  return [HEADER, ...rows].join("\n") + "\n";
}

function errorOf(fn: () => unknown): PartitionTableError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PartitionTableError);
    return e as PartitionTableError;
  }
  throw new Error("expected a PartitionTableError, nothing was thrown");
}

/** Asserts the rule id, and that the message names the rule and (for CSV errors) the file and line. */
function expectCsvError(text: string, rule: string, line: number, opts: ParseOptions = {}): PartitionTableError {
  const e = errorOf(() => parsePartitionCsv(text, opts));
  expect(e.rule).toBe(rule);
  expect(e.line).toBe(line);
  expect(e.message).toContain(`${opts.fileName ?? "partitions.csv"} line ${line}: `);
  expect(e.message).toContain(`[rule: ${rule}]`);
  return e;
}

function expectBinError(bytes: Uint8Array, rule: string, opts: { chipSize: number; requireMd5?: boolean }) {
  const e = errorOf(() => readPartitionTable(bytes, opts));
  expect(e.rule).toBe(rule);
  expect(e.message).toContain(`[rule: ${rule}]`);
  return e;
}

function rows(parts: Partition[]): [string, number, number, number, number][] {
  return parts.map((p) => [p.name, p.type, p.subtype, p.offset, p.size]);
}

const hexBytes = (b: Uint8Array) => Buffer.from(b).toString("hex");

function part(name: string, type: number, subtype: number, offset: number, size: number): Partition {
  return { name, type, subtype, offset, size, encrypted: false, readonly: false };
}

describe("ESP-IDF reference vectors", () => {
  it("partitions_two_ota.csv: rows, MD5 entry at 0xC0, digest, 0xFF padding", () => {
    const parts = parsePartitionCsv(TWO_OTA_CSV);
    expect(rows(parts)).toEqual([
      ["nvs", 0x01, 0x02, 0x9000, 0x4000],
      ["otadata", 0x01, 0x00, 0xd000, 0x2000],
      ["phy_init", 0x01, 0x01, 0xf000, 0x1000],
      ["factory", 0x00, 0x00, 0x10000, 0x100000],
      ["ota_0", 0x00, 0x10, 0x110000, 0x100000],
      ["ota_1", 0x00, 0x11, 0x210000, 0x100000],
    ]);
    expect(parts.map((p) => p.line)).toEqual([3, 4, 5, 6, 7, 8]);

    const bin = buildPartitionTableBinary(parts);
    expect(bin.length).toBe(0xc00);
    const md5At = 0xc0;
    expect(hexBytes(bin.subarray(md5At, md5At + 16))).toBe("ebeb" + "ff".repeat(14));
    expect(hexBytes(bin.subarray(md5At + 16, md5At + 32))).toBe("bf25822c0fa6d8641bd930251e06b4c4");
    expect(bin.subarray(md5At + 32).every((b) => b === 0xff)).toBe(true);
    // First entry, byte for byte: AA 50, type, subtype, offset, size, label, flags.
    expect(hexBytes(bin.subarray(0, 32))).toBe(
      "aa50" + "0102" + "00900000" + "00400000" + hexBytes(Buffer.from("nvs")) + "00".repeat(13) + "00000000",
    );
  });

  it("partitions_singleapp.csv: rows, MD5 entry at 0x60, digest, 0xFF padding", () => {
    const parts = parsePartitionCsv(SINGLEAPP_CSV);
    expect(rows(parts)).toEqual([
      ["nvs", 0x01, 0x02, 0x9000, 0x6000],
      ["phy_init", 0x01, 0x01, 0xf000, 0x1000],
      ["factory", 0x00, 0x00, 0x10000, 0x100000],
    ]);
    const bin = buildPartitionTableBinary(parts);
    expect(bin.length).toBe(PARTITION_TABLE_MAX_LEN);
    expect(hexBytes(bin.subarray(0x60, 0x70))).toBe("ebeb" + "ff".repeat(14));
    expect(hexBytes(bin.subarray(0x70, 0x80))).toBe("f4ad4f4538564b5d7435b62c75b69524");
    expect(bin.subarray(0x80).every((b) => b === 0xff)).toBe(true);
    // The digest covers exactly the preceding entries.
    expect(hexBytes(bin.subarray(0x70, 0x80))).toBe(createHash("md5").update(bin.subarray(0, 0x60)).digest("hex"));
  });

  it("without MD5 the entries are followed directly by 0xFF padding", () => {
    const bin = buildPartitionTableBinary(parsePartitionCsv(SINGLEAPP_CSV), { md5: false });
    expect(bin.length).toBe(0xc00);
    expect(bin.subarray(0x60).every((b) => b === 0xff)).toBe(true);
  });
});

describe("CSV lines and columns", () => {
  it("expands $VAR and ${VAR} from opts.env", () => {
    const parts = parsePartitionCsv(csv("nvs, data, nvs, $NVS_OFF, ${NVS_SIZE}"), {
      env: { NVS_OFF: "0x9000", NVS_SIZE: "0x5000" },
    });
    expect(rows(parts)).toEqual([["nvs", 1, 2, 0x9000, 0x5000]]);
  });

  it("rule unknown-variable: an unset variable is an error", () => {
    expectCsvError(csv("nvs, data, nvs, , 0x4000", "$APP_NAME, app, ota_0, , 1M"), "unknown-variable", 3);
    const e = expectCsvError(csv("nvs, data, nvs, ${NVS_OFF}, 0x4000"), "unknown-variable", 2, { env: {} });
    expect(e.message).toContain("unknown variable 'NVS_OFF'");
  });

  it("skips comments and blank lines but counts them for line numbers", () => {
    const text = ["", "# comment $NOT_A_VAR", "   ", "  # indented comment", "nvs, data, nvs, , 0x4000", "x, data, nvs"].join(
      "\r\n",
    );
    const parts = parsePartitionCsv(["", "# c", "  ", "nvs, data, nvs, , 0x4000"].join("\r\n"));
    expect(parts[0]!.line).toBe(4);
    expectCsvError(text, "size-empty", 6);
  });

  it("treats missing trailing columns as empty and ignores extra columns", () => {
    const parts = parsePartitionCsv(csv("nvs, data, nvs, , 0x4000", "blob, data, , , 0x1000, , extra, columns"));
    expect(parts[1]).toMatchObject({ subtype: DataSubtype.undefined, offset: 0xd000, encrypted: false });
  });

  it("rule size-empty: size column missing or blank", () => {
    expectCsvError(csv("nvs, data, nvs, , 0x4000", "blob, data"), "size-empty", 3);
    expectCsvError(csv("nvs, data, nvs, 0x9000,"), "size-empty", 2);
  });
});

describe("CSV type and subtype", () => {
  it("accepts keywords (any case) or numbers", () => {
    const parts = parsePartitionCsv(csv("a, DATA, NVS, , 0x4000", "b, 1, 0x81, , 0x1000", "c, 0x40, 7, , 0x1000"));
    expect(rows(parts)).toEqual([
      ["a", 1, 2, 0x9000, 0x4000],
      ["b", 1, 0x81, 0xd000, 0x1000],
      ["c", 0x40, 7, 0xe000, 0x1000],
    ]);
    const all = parsePartitionCsv(
      csv(
        "t0, app, tee_0, , 64K",
        "t1, app, tee_1, , 64K",
        "tst, app, test, , 64K",
        "lfs, data, littlefs, , 4K",
        "teeota, data, tee_ota, , 8K",
        "keys, data, nvs_keys, , 4K",
        "ef, data, efuse, , 4K",
        "web, data, esphttpd, , 4K",
        "fat, data, fat, , 4K",
        "sp, data, spiffs, , 4K",
        "cd, data, coredump, , 4K",
        "ptota, partition_table, ota, , ",
      ),
    );
    expect(all.map((p) => p.subtype)).toEqual([0x30, 0x31, 0x20, 0x83, 0x90, 0x04, 0x05, 0x80, 0x81, 0x82, 0x03, 0x01]);
    expect(all.at(-1)).toMatchObject({ type: 3, size: 0x1000 }); // partition_table size is fixed
  });

  it("rule type-empty", () => {
    const e = expectCsvError(csv("nvs, , nvs, , 0x4000"), "type-empty", 2);
    expect(e.message).toContain("Field 'type' can't be left empty.");
  });

  it("rule type-invalid: unknown keyword", () => {
    const e = expectCsvError(csv("nvs, dta, nvs, , 0x4000"), "type-invalid", 2);
    expect(e.message).toContain("Value 'dta' is not valid. Known keywords: bootloader, partition_table, app, data");
  });

  it("rule subtype-empty: an app partition needs a subtype", () => {
    const e = expectCsvError(csv("nvs, data, nvs, , 0x4000", "app0, app, , , 1M"), "subtype-empty", 3);
    expect(e.message).toContain("App partition cannot have an empty subtype");
  });

  it("empty data subtype means undefined (0x06)", () => {
    const [p] = parsePartitionCsv(csv("blob, data, , , 0x1000"));
    expect(p!.subtype).toBe(0x06);
    expect(subtypeName(p!.type, p!.subtype)).toBe("undefined");
  });

  it("rule subtype-invalid: keyword not in the type's table, or a word for a type without keywords", () => {
    expectCsvError(csv("x, data, ota_0, , 0x1000"), "subtype-invalid", 2);
    expectCsvError(csv("x, 0x40, nvs, , 0x1000"), "subtype-invalid", 2);
  });
});

describe("CSV numbers (parse_int)", () => {
  it("int(v, 0) syntax and K/M suffixes, also on hex", () => {
    const parts = parsePartitionCsv(
      csv(
        "a, data, nvs, 0x9000, 0x10K", // 0x4000
        "b, data, 0o1, 53248, 0b1000000000000", // 0xd000, 0x1000
        "c, data, phy, 0xE000, 4k",
        "d, data, fat, 0x1_0000, 1_024K",
        "e, app, factory, 0x110000, 1M",
        "f, data, spiffs, , 0x1m",
      ),
    );
    expect(rows(parts)).toEqual([
      ["a", 1, 2, 0x9000, 0x4000],
      ["b", 1, 1, 0xd000, 0x1000],
      ["c", 1, 1, 0xe000, 0x1000],
      ["d", 1, 0x81, 0x10000, 0x100000],
      ["e", 0, 0, 0x110000, 0x100000],
      ["f", 1, 0x82, 0x210000, 0x100000],
    ]);
  });

  it("rule offset-invalid / size-invalid: not a Python int (e.g. leading zero, garbage)", () => {
    expectCsvError(csv("a, data, nvs, 09000, 0x4000"), "offset-invalid", 2);
    const e = expectCsvError(csv("a, data, nvs, , 16KB"), "size-invalid", 2);
    expect(e.message).toContain("Invalid field value");
  });

  it("rule range: values that do not fit the binary entry", () => {
    expectCsvError(csv("a, data, nvs, 0x100000000, 0x4000"), "range", 2);
    expectCsvError(csv("a, 0x100, 1, , 0x4000"), "range", 2);
    expectCsvError(csv("a, data, phy, , -0x1000"), "range", 2); // -size - offset < 0
  });
});

describe("CSV offsets", () => {
  it("auto offsets round up to 0x1000 for data and 0x10000 for app", () => {
    const parts = parsePartitionCsv(csv("nvs, data, nvs, , 0x3800", "phy, data, phy, , 0x800", "app, app, ota_0, , 64K"));
    expect(parts.map((p) => p.offset)).toEqual([0x9000, 0xd000, 0x10000]);
  });

  it("auto offsets start at tableOffset + 0x1000", () => {
    const parts = parsePartitionCsv(csv("nvs, data, nvs, , 0x4000"), { tableOffset: 0xa000 });
    expect(parts[0]!.offset).toBe(0xb000);
  });

  it("rule overlap-table: first partition below the end of the table sector", () => {
    const e = expectCsvError(csv("nvs, data, nvs, 0x8000, 0x4000"), "overlap-table", 2);
    expect(e.message).toContain("But partition table occupies the whole sector 0x8000. Use a free offset 0x9000 or higher.");
  });

  it("rule overlap-previous: explicit offset below the previous partition's end", () => {
    const e = expectCsvError(csv("nvs, data, nvs, , 0x4000", "phy, data, phy, 0xc000, 0x1000"), "overlap-previous", 3);
    expect(e.message).toContain("Partition sets offset 0xc000. Previous partition ends 0xd000");
  });

  it("rule offset-align: data on 0x1000, app on 0x10000", () => {
    expectCsvError(csv("nvs, data, nvs, 0x9800, 0x4000"), "offset-align", 2);
    const e = expectCsvError(csv("nvs, data, nvs, , 0x4000", "app, app, ota_0, 0x18000, 64K"), "offset-align", 3);
    expect(e.message).toContain("Offset 0x18000 is not aligned to 0x10000");
  });
});

describe("CSV sizes and flags", () => {
  it("a negative size reaches up to that absolute address", () => {
    const parts = parsePartitionCsv(csv("nvs, data, nvs, , 0x4000", "app, app, ota_0, , -0x200000"));
    expect(parts[1]).toMatchObject({ offset: 0x10000, size: 0x1f0000 });
  });

  it("rule size-align: app size a multiple of 0x1000 (0x10000 with secure boot v1)", () => {
    expectCsvError(csv("app, app, ota_0, 0x10000, 0x10800"), "size-align", 2);
    expect(parsePartitionCsv(csv("app, app, ota_0, 0x10000, 0x11000"))[0]!.size).toBe(0x11000);
    expectCsvError(csv("app, app, ota_0, 0x10000, 0x11000"), "size-align", 2, { secureV1: true });
    // Data sizes have no alignment rule.
    expect(parsePartitionCsv(csv("blob, data, , , 0x123"))[0]!.size).toBe(0x123);
  });

  it("flags: encrypted, readonly, both", () => {
    const parts = parsePartitionCsv(
      csv("a, data, nvs, , 0x4000, encrypted", "b, data, nvs, , 0x4000, readonly", "c, app, ota_0, , 1M, encrypted:readonly"),
    );
    expect(parts.map((p) => [p.encrypted, p.readonly])).toEqual([
      [true, false],
      [false, true],
      [true, true],
    ]);
  });

  it("rule flag-unknown (flags are colon-separated and not trimmed)", () => {
    expectCsvError(csv("a, data, nvs, , 0x4000, secure"), "flag-unknown", 2);
    const e = expectCsvError(csv("a, data, nvs, , 0x4000, encrypted: readonly"), "flag-unknown", 2);
    expect(e.message).toContain("unknown flag ' readonly'");
  });
});

describe("CSV table-level rules", () => {
  it("rule name-unique", () => {
    expectCsvError(csv("nvs, data, nvs, , 0x4000", "nvs, data, phy, , 0x1000"), "name-unique", 3);
  });

  it("rule below-table (verify, e.g. a table read from a binary)", () => {
    const e = errorOf(() => verifyPartitionTable([part("nvs", 1, 2, 0x6000, 0x4000)]));
    expect(e.rule).toBe("below-table");
    expect(e.message).toContain("Partition offset 0x6000 is below 0x9000");
  });

  it("primary bootloader and partition table rows may sit below the first free offset", () => {
    const parts = parsePartitionCsv(
      csv("bootloader, bootloader, primary, , ", "ptable, partition_table, primary, , ", "nvs, data, nvs, , 0x4000"),
      { primaryBootloaderOffset: 0x1000 },
    );
    expect(rows(parts)).toEqual([
      ["bootloader", 2, 0, 0x1000, 0x7000],
      ["ptable", 3, 0, 0x8000, 0x1000],
      ["nvs", 1, 2, 0x9000, 0x4000],
    ]);
  });

  it("rule bootloader-offset-missing / bootloader-offset-order", () => {
    expectCsvError(csv("bootloader, bootloader, primary, , "), "bootloader-offset-missing", 2);
    const e = errorOf(() => parsePartitionCsv(csv(), { primaryBootloaderOffset: 0x8000 }));
    expect(e.rule).toBe("bootloader-offset-order");
  });

  it("rule overlap (verify)", () => {
    const e = errorOf(() => verifyPartitionTable([part("a", 1, 2, 0x9000, 0x4000), part("b", 1, 1, 0xc000, 0x1000)]));
    expect(e.rule).toBe("overlap");
    expect(e.message).toContain("Partition at 0xc000 overlaps 0x9000-0xcfff");
  });

  it("rule otadata-multiple", () => {
    expectCsvError(csv("od1, data, ota, , 0x2000", "od2, data, ota, , 0x2000"), "otadata-multiple", 3);
  });

  it("rule otadata-size: exactly 0x2000", () => {
    const e = expectCsvError(csv("nvs, data, nvs, , 0x4000", "otadata, data, ota, , 0x3000"), "otadata-size", 3);
    expect(e.message).toContain("otadata partition must have size = 0x2000");
  });

  it("rules tee-otadata-multiple / tee-otadata-size", () => {
    expectCsvError(csv("t1, data, tee_ota, , 0x2000", "t2, data, tee_ota, , 0x2000"), "tee-otadata-multiple", 3);
    expectCsvError(csv("t1, data, tee_ota, , 0x1000"), "tee-otadata-size", 2);
  });

  it("rule readonly-not-allowed: data/ota and data/coredump", () => {
    expectCsvError(csv("otadata, data, ota, , 0x2000, readonly"), "readonly-not-allowed", 2);
    expectCsvError(csv("nvs, data, nvs, , 0x4000", "cd, data, coredump, , 64K, readonly"), "readonly-not-allowed", 3);
    // Other data subtypes may be readonly.
    expect(parsePartitionCsv(csv("blob, data, , , 0x1000, readonly"))[0]!.readonly).toBe(true);
  });

  it("rule nvs-readonly: NVS smaller than 0x3000 must be readonly", () => {
    expectCsvError(csv("nvs, data, nvs, , 0x2000"), "nvs-readonly", 2);
    expect(parsePartitionCsv(csv("nvs, data, nvs, , 0x2000, readonly"))[0]!.readonly).toBe(true);
    expect(parsePartitionCsv(csv("nvs, data, nvs, , 0x3000"))).toHaveLength(1);
  });

  it("rule flash-size: the last partition must end within flash", () => {
    const e = expectCsvError(TWO_OTA_CSV, "flash-size", 8, { flashSize: 2 * MB, fileName: "two_ota.csv" });
    expect(e.message).toContain("two_ota.csv line 8:");
    expect(parsePartitionCsv(TWO_OTA_CSV, { flashSize: 4 * MB })).toHaveLength(6);
  });

  it("names over 16 bytes are kept but reported (the binary truncates them)", () => {
    const { partitions, warnings } = parsePartitionCsvWithWarnings(csv("a_very_long_partition_name, data, nvs, , 0x4000"));
    expect(partitions[0]!.name).toBe("a_very_long_partition_name");
    expect(warnings).toEqual([expect.objectContaining({ rule: "name-truncated", line: 2 })]);
    const read = readPartitionTable(buildPartitionTableBinary(partitions), { chipSize: 4 * MB });
    expect(read[0]!.name).toBe("a_very_long_part");
    // Exactly 16 bytes: no NUL terminator in the entry, still read back whole.
    const sixteen = parsePartitionCsv(csv("sixteen_chars_ok, data, nvs, , 0x4000"));
    expect(readPartitionTable(buildPartitionTableBinary(sixteen), { chipSize: 4 * MB })[0]!.name).toBe("sixteen_chars_ok");
  });

  it("warns when a name is a keyword of another type/subtype", () => {
    const { warnings } = parsePartitionCsvWithWarnings(csv("app, data, nvs, , 0x4000", "nvs, data, phy, , 0x1000"));
    expect(warnings.map((w) => [w.rule, w.line])).toEqual([
      ["name-keyword", 2],
      ["name-keyword", 3],
    ]);
    expect(parsePartitionCsvWithWarnings(TWO_OTA_CSV).warnings).toEqual([]);
  });
});

describe("simulator's own rules (not ESP-IDF)", () => {
  it("rule ota-contiguous: ota_0..ota_(N-1) without gaps", () => {
    const text = csv("nvs, data, nvs, , 0x4000", "otadata, data, ota, , 0x2000", "a, app, ota_0, , 1M", "b, app, ota_2, , 1M");
    const e = expectCsvError(text, "ota-contiguous", 5);
    expect(e.message).toContain("simulator rule");
    // gen_esp32part itself accepts it.
    expect(parsePartitionCsv(text, { simulatorRules: false })).toHaveLength(4);
    expectCsvError(csv("b, app, ota_1, , 1M"), "ota-contiguous", 2);
  });

  it("rule ota-duplicate: one partition per OTA slot", () => {
    expectCsvError(csv("a, app, ota_0, , 1M", "b, app, ota_1, , 1M", "c, app, ota_0, , 1M"), "ota-duplicate", 4);
  });
});

describe("binary table", () => {
  const twoOta = () => buildPartitionTableBinary(parsePartitionCsv(TWO_OTA_CSV));
  const chipSize = 4 * MB;

  it("round-trips CSV -> binary -> partitions, flags included", () => {
    const parts = parsePartitionCsv(
      csv("nvs, data, nvs, , 0x4000, encrypted", "otadata, data, ota, , 0x2000", "ota_0, app, ota_0, , 1M, encrypted:readonly"),
    );
    const bin = buildPartitionTableBinary(parts);
    const read = readPartitionTable(bin, { chipSize });
    expect(read).toEqual(parts.map(({ line: _line, ...p }) => p));
    // A full 0x1000 sector (with whatever follows 0xC00) reads the same.
    const sector = new Uint8Array(0x1000).fill(0xff);
    sector.set(bin);
    expect(readPartitionTable(sector, { chipSize })).toEqual(read);
  });

  it("accepts a table without MD5 only when MD5 is not required", () => {
    const bin = buildPartitionTableBinary(parsePartitionCsv(TWO_OTA_CSV), { md5: false });
    const e = expectBinError(bin, "md5-missing", { chipSize });
    expect(e.espError).toBe("ESP_ERR_NOT_FOUND");
    expect(readPartitionTable(bin, { chipSize, requireMd5: false })).toHaveLength(6);
  });

  it("rejects a bad magic in the first entry", () => {
    const bin = twoOta();
    bin[0] = 0x00;
    const e = expectBinError(bin, "magic", { chipSize });
    expect(e.entry).toBe(0);
    expect(e.espError).toBe("ESP_ERR_INVALID_STATE");
  });

  it("rejects an erased first entry as empty", () => {
    expectBinError(new Uint8Array(0xc00).fill(0xff), "empty", { chipSize });
  });

  it("rejects a wrong MD5 digest, and a changed entry under a correct-looking digest", () => {
    const bin = twoOta();
    bin[0xc0 + 31] ^= 1;
    expectBinError(bin, "md5-mismatch", { chipSize, requireMd5: false }); // the bootloader always checks it
    const tampered = twoOta();
    tampered[8] ^= 0x10; // nvs size
    expectBinError(tampered, "md5-mismatch", { chipSize });
  });

  it("rejects an entry beyond the chip size", () => {
    const e = expectBinError(twoOta(), "bounds", { chipSize: 0x280000 });
    expect(e.entry).toBe(5); // ota_1 @ 0x210000
    expect(e.espError).toBe("ESP_ERR_INVALID_SIZE");
    expect(readPartitionTable(twoOta(), { chipSize: 0x310000 })).toHaveLength(6); // ending exactly at the end is fine
  });

  it("bounds use uint32 arithmetic like the C code (offset + size may wrap)", () => {
    const bin = buildPartitionTableBinary([part("wrap", 1, 6, 0x9000, 0xffff8000)]);
    expect(readPartitionTable(bin, { chipSize }).map((p) => p.size)).toEqual([0xffff8000]);
  });

  it("rejects a table with no terminator within 96 entries", () => {
    const bin = new Uint8Array(0x1000).fill(0xff);
    const entry = buildPartitionTableBinary([part("x", 1, 6, 0x9000, 0x1000)], { md5: false }).subarray(0, 32);
    for (let i = 0; i < 96; i++) bin.set(entry, i * 32);
    expectBinError(bin, "no-terminator", { chipSize, requireMd5: false });
  });

  it("rejects two MD5 entries", () => {
    const bin = twoOta();
    bin.copyWithin(0xe0, 0xc0, 0xe0); // a second copy right after the first
    expectBinError(bin, "md5-duplicate", { chipSize });
  });

  it("terminator: only magic/type/subtype must be 0xFF", () => {
    const bin = twoOta();
    bin.fill(0x00, 0xe0 + 4, 0xe0 + 32);
    expect(readPartitionTable(bin, { chipSize })).toHaveLength(6);
  });

  it("rule table-too-long: 94 entries with MD5, 95 without", () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => part(`p${i}`, 1, 6, 0x9000 + i * 0x1000, 0x1000));
    const full = buildPartitionTableBinary(many(94));
    expect(readPartitionTable(full, { chipSize })).toHaveLength(94);
    expect(buildPartitionTableBinary(many(95), { md5: false })).toHaveLength(0xc00);
    expect(errorOf(() => buildPartitionTableBinary(many(95))).rule).toBe("table-too-long");
    expect(errorOf(() => buildPartitionTableBinary(many(96), { md5: false })).rule).toBe("table-too-long");
  });

  it("refuses to pack values that do not fit", () => {
    expect(errorOf(() => buildPartitionTableBinary([part("x", 1, 6, -1, 0x1000)])).rule).toBe("range");
  });
});

describe("lookups, names and display", () => {
  const parts = parsePartitionCsv(TWO_OTA_CSV);

  it("findPartition / findByName / otaAppPartitions", () => {
    expect(findPartition(parts, PartitionType.data, DataSubtype.ota)?.name).toBe("otadata");
    expect(findPartition(parts, PartitionType.app, AppSubtype.test)).toBeUndefined();
    expect(findByName(parts, "phy_init")?.offset).toBe(0xf000);
    expect(findByName(parts, "nope")).toBeUndefined();
    const shuffled = [parts[5]!, parts[3]!, parts[4]!];
    expect(otaAppPartitions(shuffled).map((p) => p.name)).toEqual(["ota_0", "ota_1"]);
  });

  it("typeName / subtypeName, hex when unknown", () => {
    expect(typeName(0)).toBe("app");
    expect(typeName(3)).toBe("partition_table");
    expect(typeName(0x40)).toBe("0x40");
    expect(subtypeName(0, 0x1f)).toBe("ota_15");
    expect(subtypeName(1, 0x83)).toBe("littlefs");
    expect(subtypeName(2, 2)).toBe("recovery");
    expect(subtypeName(1, 0x42)).toBe("0x42");
    expect(subtypeName(0x40, 0)).toBe("0x00");
  });

  it("formatTable shows one row per partition with hex and human sizes", () => {
    const text = formatTable(parsePartitionCsv(csv("nvs, data, nvs, , 0x4000, readonly", "ota_0, app, ota_0, , 0x1E0000")));
    const lines = text.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^Name\s+Type\s+SubType\s+Offset\s+Size\s+Flags$/);
    expect(lines[1]).toMatch(/^nvs\s+data\s+nvs\s+0x9000\s+0x4000 \(16 KiB\)\s+readonly$/);
    expect(lines[2]).toMatch(/^ota_0\s+app\s+ota_0\s+0x10000\s+0x1e0000 \(1\.875 MiB\)$/);
  });

  it("parseSize", () => {
    expect(parseSize("4MB")).toBe(4 * MB);
    expect(parseSize("4M")).toBe(4 * MB);
    expect(parseSize("4mib")).toBe(4 * MB);
    expect(parseSize("0x400000")).toBe(4 * MB);
    expect(parseSize("4194304")).toBe(4 * MB);
    expect(parseSize("512K")).toBe(512 * 1024);
    expect(parseSize("16 MB")).toBe(16 * MB);
    for (const bad of ["", "MB", "4XB", "four", "-4MB", "0", "04MB", "4.5MB"]) {
      expect(errorOf(() => parseSize(bad)).rule).toBe("size-invalid");
    }
  });

  it("exports the default table offset", () => {
    expect(PARTITION_TABLE_OFFSET).toBe(0x8000);
  });
});

describe("project partitions.csv", () => {
  const path = fileURLToPath(new URL("../partitions.csv", import.meta.url));

  // The lead maintains this file; a missing file fails here on purpose.
  it("is a valid 4 MB A/B layout with an agent partition", () => {
    const { partitions, warnings } = parsePartitionCsvWithWarnings(readFileSync(path, "utf8"), {
      flashSize: 4 * MB,
      fileName: "partitions.csv",
    });
    expect(warnings).toEqual([]);
    const otadata = findPartition(partitions, PartitionType.data, DataSubtype.ota);
    expect(otadata?.size).toBe(0x2000);
    const [ota0, ota1, ...more] = otaAppPartitions(partitions);
    expect(more).toEqual([]);
    expect(ota0?.subtype).toBe(AppSubtype.ota_0);
    expect(ota1?.subtype).toBe(AppSubtype.ota_1);
    expect(ota0!.size).toBe(ota1!.size);
    expect(ota0!.size).toBeGreaterThanOrEqual(1.5 * MB);
    for (const app of partitions.filter((p) => p.type === PartitionType.app)) expect(app.offset % 0x10000).toBe(0);
    expect(Math.max(...partitions.map((p) => p.offset + p.size))).toBeLessThanOrEqual(4 * MB);
    expect(findByName(partitions, "nvs")?.subtype).toBe(DataSubtype.nvs);
    expect(findByName(partitions, "phy_init")?.subtype).toBe(DataSubtype.phy);
    expect(findByName(partitions, "agent")?.type).toBe(PartitionType.data);
    // And the firmware would accept its binary.
    expect(readPartitionTable(buildPartitionTableBinary(partitions), { chipSize: 4 * MB })).toHaveLength(partitions.length);
  });
});
