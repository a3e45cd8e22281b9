/**
 * ESP-IDF partition table: CSV parser (gen_esp32part.py rules), binary writer and the
 * bootloader/app-side binary reader.
 *
 * Behaviour follows ESP-IDF v6.0 (gen_esp32part.py tool version 1.5,
 * bootloader_support/src/flash_partitions.c, esp_partition/partition.c). Where older
 * releases differ it is noted next to the rule. See /work/shared/reference/esp-idf-formats.md §1.
 *
 * Platform-neutral apart from node:crypto for MD5.
 */
import { createHash } from "node:crypto";

// ---------------------------------------------------------------------------------------------
// Constants

export const PARTITION_TABLE_OFFSET = 0x8000;
/** One flash sector holds the table; only the first 0xC00 bytes are entries (rest: secure boot v1 signature). */
export const PARTITION_TABLE_SIZE = 0x1000;
export const PARTITION_TABLE_MAX_LEN = 0xc00;
export const PARTITION_ENTRY_SIZE = 32;
/** ESP_PARTITION_TABLE_MAX_ENTRIES: the bootloader looks at most this many entries (terminator included). */
export const PARTITION_TABLE_MAX_ENTRIES = PARTITION_TABLE_MAX_LEN / PARTITION_ENTRY_SIZE;
export const PARTITION_MAGIC = 0x50aa;
export const PARTITION_MAGIC_MD5 = 0xebeb;
/** Label field width; longer names are truncated when packed. */
export const PARTITION_NAME_MAX = 16;
export const PART_FLAG_ENCRYPTED = 1 << 0;
export const PART_FLAG_READONLY = 1 << 1;
/** data/ota and data/tee_ota must be exactly two sectors. */
export const OTADATA_SIZE = 0x2000;
/** Read/write NVS needs at least this much (v5.5+); smaller NVS must be readonly. */
export const NVS_RW_MIN_SIZE = 0x3000;

export const PartitionType = { app: 0x00, data: 0x01, bootloader: 0x02, partition_table: 0x03 } as const;

export const AppSubtype = {
  factory: 0x00,
  ota_0: 0x10, ota_1: 0x11, ota_2: 0x12, ota_3: 0x13, ota_4: 0x14, ota_5: 0x15, ota_6: 0x16, ota_7: 0x17,
  ota_8: 0x18, ota_9: 0x19, ota_10: 0x1a, ota_11: 0x1b, ota_12: 0x1c, ota_13: 0x1d, ota_14: 0x1e, ota_15: 0x1f,
  test: 0x20,
  tee_0: 0x30, // v5.5+
  tee_1: 0x31, // v5.5+
} as const;

export const DataSubtype = {
  ota: 0x00,
  phy: 0x01,
  nvs: 0x02,
  coredump: 0x03,
  nvs_keys: 0x04,
  efuse: 0x05,
  undefined: 0x06,
  esphttpd: 0x80,
  fat: 0x81,
  spiffs: 0x82,
  littlefs: 0x83, // v5.0+
  tee_ota: 0x90, // v5.5+
} as const;

/** Partition types 0x02/0x03 exist since v5.4. */
export const BootloaderSubtype = { primary: 0x00, ota: 0x01, recovery: 0x02 } as const;
export const PartitionTableSubtype = { primary: 0x00, ota: 0x01 } as const;

/** CSV keyword tables per type (gen_esp32part SUBTYPES). Types without an entry accept numbers only. */
export const SUBTYPES: Readonly<Record<number, Readonly<Record<string, number>>>> = {
  [PartitionType.app]: AppSubtype,
  [PartitionType.data]: DataSubtype,
  [PartitionType.bootloader]: BootloaderSubtype,
  [PartitionType.partition_table]: PartitionTableSubtype,
};

/** Type keywords in gen_esp32part's order (it lists them in this order in error messages). */
const TYPE_KEYWORDS: Readonly<Record<string, number>> = {
  bootloader: PartitionType.bootloader,
  partition_table: PartitionType.partition_table,
  app: PartitionType.app,
  data: PartitionType.data,
};

/** OTA app slots: (subtype & 0xF0) == 0x10, slot = subtype & 0x0F (PART_SUBTYPE_OTA_FLAG/_MASK). */
const OTA_FLAG = 0x10;
const OTA_MASK = 0x0f;

/** Offset alignment per type; unknown (custom) types use the data alignment. */
export function offsetAlignment(type: number): number {
  // v4.4 and older: data was only 4-byte aligned (a warning for non-4K); strict 0x1000 since v5.0.
  return type === PartitionType.app ? 0x10000 : 0x1000;
}

/** Size alignment for app partitions (v5.3+; v5.0–v5.2 checked it only with --secure). */
export function appSizeAlignment(secureV1 = false): number {
  // Secure boot v1 keeps its signature at the very end of a 64K block.
  return secureV1 ? 0x10000 : 0x1000;
}

// ---------------------------------------------------------------------------------------------
// Types and errors

export interface Partition {
  name: string;
  type: number;
  subtype: number;
  offset: number;
  size: number;
  encrypted: boolean;
  readonly: boolean;
  /** CSV line, 1-based (absent for partitions read from a binary). */
  line?: number;
}

/**
 * A broken rule. `rule` is a stable kebab-case id (see RULES in the tests); the message always
 * names the rule and, for CSV input, the file and line ("partitions.csv line 5: ... [rule: size-empty]").
 */
export class PartitionTableError extends Error {
  readonly rule: string;
  readonly line?: number;
  /** Binary reader: index of the offending 32-byte entry. */
  readonly entry?: number;
  /** Binary reader: the esp_err_t the firmware would return. */
  readonly espError?: string;

  constructor(
    rule: string,
    message: string,
    where: { line?: number; fileName?: string; entry?: number; espError?: string } = {},
  ) {
    let prefix = "";
    if (where.line !== undefined) prefix = `${where.fileName ?? "partitions.csv"} line ${where.line}: `;
    else if (where.entry !== undefined) prefix = `partition table entry ${where.entry}: `;
    else if (where.fileName !== undefined) prefix = `${where.fileName}: `;
    super(`${prefix}${message} [rule: ${rule}]`);
    this.name = "PartitionTableError";
    this.rule = rule;
    this.line = where.line;
    this.entry = where.entry;
    this.espError = where.espError;
  }
}

/** Things gen_esp32part only prints (or does silently) but a caller may want to show. */
export interface PartitionWarning {
  rule: "name-truncated" | "name-keyword";
  name: string;
  line?: number;
  message: string;
}

export interface VerifyOptions {
  /** Default 0x8000. Partitions may not start below tableOffset + 0x1000. */
  tableOffset?: number;
  /** Flash size in bytes; if given, the end of the last partition must fit. */
  flashSize?: number;
  /** Used in messages (default "partitions.csv"). */
  fileName?: string;
  /** gen_esp32part --secure v1: app sizes must be multiples of 0x10000. */
  secureV1?: boolean;
  /** The simulator's own extra rules (OTA slots contiguous and unique). Default true. */
  simulatorRules?: boolean;
}

export interface ParseOptions extends VerifyOptions {
  /** $VAR / ${VAR} expansion. Platform-neutral: process.env is NOT consulted unless passed here. */
  env?: Record<string, string>;
  /** --primary-bootloader-offset: needed by any `bootloader` row (v5.4+). */
  primaryBootloaderOffset?: number;
  /** --recovery-bootloader-offset: needed by a `bootloader, recovery` row. */
  recoveryBootloaderOffset?: number;
}

export interface ParsedPartitionCsv {
  partitions: Partition[];
  warnings: PartitionWarning[];
}

// ---------------------------------------------------------------------------------------------
// Number parsing

/** Python int(v, 0): optional sign, 0x/0o/0b prefixes, underscores between digits, no leading zeros. */
const PY_INT_BASE0 = /^[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|[1-9](?:_?\d)*|0(?:_?0)*)$/;

function pyIntBase0(text: string): number | undefined {
  const s = text.trim(); // int() ignores surrounding whitespace
  if (!PY_INT_BASE0.test(s)) return undefined;
  const negative = s.startsWith("-");
  // BigInt() understands the same prefixes; leading-zero decimals were rejected above.
  const magnitude = BigInt(s.replace(/^[+-]/, "").replace(/_/g, ""));
  return Number(negative ? -magnitude : magnitude);
}

class FieldError extends Error {}

/**
 * gen_esp32part parse_int: a trailing k/K (×1024) or m/M (×1024²) is peeled off recursively, so
 * suffixes work on hex ("0x10K") and stack ("1KK"); then int(v, 0); then a case-insensitive keyword.
 */
function parseIntField(v: string, keywords: Readonly<Record<string, number>> = {}): number {
  const lower = v.toLowerCase();
  if (lower.endsWith("k")) return parseIntField(v.slice(0, -1), keywords) * 1024;
  if (lower.endsWith("m")) return parseIntField(v.slice(0, -1), keywords) * 1024 * 1024;
  const n = pyIntBase0(v);
  if (n !== undefined) return n;
  const names = Object.keys(keywords);
  if (names.length === 0) throw new FieldError(`Invalid field value ${v}`);
  if (Object.hasOwn(keywords, lower)) return keywords[lower]!;
  throw new FieldError(`Value '${v}' is not valid. Known keywords: ${names.join(", ")}`);
}

const SIZE_TEXT = /^(.*?)(k|kb|kib|m|mb|mib|g|gb|gib)?$/i;

/**
 * A flash size for the CLI (--size): "4MB", "4M", "4MiB", "512K", "0x400000", "4194304".
 * K/M/G are binary (1024-based), as in ESP-IDF's "4MB". Throws PartitionTableError('size-invalid').
 */
export function parseSize(text: string): number {
  const m = SIZE_TEXT.exec(text.trim());
  const n = m ? pyIntBase0(m[1]!) : undefined;
  if (m === null || n === undefined || n <= 0) {
    throw new PartitionTableError("size-invalid", `invalid size '${text}' (expected e.g. 4MB, 4M, 0x400000 or 4194304)`);
  }
  const unit = (m[2] ?? "").toLowerCase()[0];
  const mult = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  return n * mult;
}

// ---------------------------------------------------------------------------------------------
// CSV

/** Python str.splitlines() boundaries, so line numbers match gen_esp32part's. */
const LINE_BREAK = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/;
/** os.path.expandvars syntax: $name or ${name}; unknown names are left in place. */
const VAR_REF = /\$(\w+|\{[^}]*\})/g;
const UNKNOWN_VAR = /\$(?:([A-Za-z_]\w*)|\{([A-Za-z_]\w*)\})/;

/** A CSV row before offsets are resolved. */
interface Row extends Omit<Partition, "offset" | "size"> {
  offset: number | null;
  size: number;
  line: number;
}

function hex(n: number): string {
  return n < 0 ? `-0x${(-n).toString(16)}` : `0x${n.toString(16)}`;
}

function isPrimary(type: number, subtype: number): boolean {
  return (type === PartitionType.bootloader || type === PartitionType.partition_table) && subtype === 0;
}

/** Parses a partitions.csv exactly as gen_esp32part does (then verifies). Throws PartitionTableError. */
export function parsePartitionCsv(text: string, opts: ParseOptions = {}): Partition[] {
  return parsePartitionCsvWithWarnings(text, opts).partitions;
}

/**
 * Same as parsePartitionCsv but also returns the warnings (names over 16 bytes, which the binary
 * silently truncates; names that are type/subtype keywords of a different type).
 */
export function parsePartitionCsvWithWarnings(text: string, opts: ParseOptions = {}): ParsedPartitionCsv {
  const tableOffset = opts.tableOffset ?? PARTITION_TABLE_OFFSET;
  const env = opts.env ?? {};
  const file = opts.fileName;
  const fail = (rule: string, message: string, line?: number): never => {
    throw new PartitionTableError(rule, message, { line, fileName: file });
  };

  if (opts.primaryBootloaderOffset !== undefined && opts.primaryBootloaderOffset >= tableOffset) {
    fail(
      "bootloader-offset-order",
      `Unsupported configuration. Primary bootloader must be below partition table. ` +
        `Check primaryBootloaderOffset=${hex(opts.primaryBootloaderOffset)} and tableOffset=${hex(tableOffset)}`,
    );
  }

  const rows: Row[] = [];
  const lines = text.replace(/^\uFEFF/, "").split(LINE_BREAK);
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw
      .replace(VAR_REF, (whole, ref: string) => {
        const name = ref.startsWith("{") ? ref.slice(1, -1) : ref;
        return Object.hasOwn(env, name) ? env[name]! : whole;
      })
      .trim();
    if (line.startsWith("#") || line.length === 0) return;
    // gen_esp32part only catches an unknown variable at the start of a line (re.match); elsewhere
    // it surfaces later as a bad field or, in the name column, not at all. We reject it anywhere.
    const unknown = UNKNOWN_VAR.exec(line);
    if (unknown) fail("unknown-variable", `unknown variable '${unknown[1] ?? unknown[2]}'`, lineNo);
    rows.push(parseRow(line, lineNo, tableOffset, opts, fail));
  });

  // Resolve auto offsets and negative sizes in CSV order (gen_esp32part from_csv).
  let lastEnd = tableOffset + PARTITION_TABLE_SIZE;
  const partitions: Partition[] = rows.map((row, i) => {
    // Primary bootloader/table rows have fixed offsets and do not move the running end.
    if (isPrimary(row.type, row.subtype)) return { ...row, offset: row.offset! };
    let offset = row.offset;
    if (offset !== null && offset < lastEnd) {
      if (i === 0) {
        fail(
          "overlap-table",
          `Partitions overlap. Partition sets offset ${hex(offset)}. But partition table occupies the whole ` +
            `sector ${hex(tableOffset)}. Use a free offset ${hex(lastEnd)} or higher.`,
          row.line,
        );
      }
      fail(
        "overlap-previous",
        `Partitions overlap. Partition sets offset ${hex(offset)}. Previous partition ends ${hex(lastEnd)}`,
        row.line,
      );
    }
    if (offset === null) {
      const align = offsetAlignment(row.type);
      offset = Math.ceil(lastEnd / align) * align;
    }
    // A negative size means "up to this absolute address".
    const size = row.size < 0 ? -row.size - offset : row.size;
    lastEnd = offset + size;
    return { ...row, offset, size };
  });

  const warnings = verifyPartitionTable(partitions, opts);
  return { partitions, warnings };
}

function parseRow(
  line: string,
  lineNo: number,
  tableOffset: number,
  opts: ParseOptions,
  fail: (rule: string, message: string, line?: number) => never,
): Row {
  // Missing trailing columns count as empty; extra columns are ignored.
  const fields = (line + ",,,,").split(",").map((f) => f.trim());
  const [name = "", typeText = "", subtypeText = "", offsetText = "", sizeText = "", flagsText = ""] = fields;
  const field = (rule: string, f: () => number): number => {
    try {
      return f();
    } catch (e) {
      if (e instanceof FieldError) return fail(rule, e.message, lineNo);
      throw e;
    }
  };
  const needBootloaderOffset = (value: number | undefined, which: "primary" | "recovery"): number =>
    value ??
    fail(
      "bootloader-offset-missing",
      `${which === "primary" ? "Primary" : "Recovery"} bootloader offset is not defined ` +
        `(gen_esp32part --${which}-bootloader-offset; ParseOptions.${which}BootloaderOffset)`,
      lineNo,
    );

  if (typeText === "") fail("type-empty", "Field 'type' can't be left empty.", lineNo);
  const type = field("type-invalid", () => parseIntField(typeText, TYPE_KEYWORDS));

  let subtype: number;
  if (subtypeText === "") {
    if (type === PartitionType.app) fail("subtype-empty", "App partition cannot have an empty subtype", lineNo);
    subtype = DataSubtype.undefined; // for every non-app type, not just data
  } else {
    subtype = field("subtype-invalid", () => parseIntField(subtypeText, SUBTYPES[type] ?? {}));
  }

  // Bootloader and primary table rows take offset/size from the tool options; their columns are ignored.
  let offset: number | null;
  if (type === PartitionType.bootloader && subtype === BootloaderSubtype.primary) {
    offset = needBootloaderOffset(opts.primaryBootloaderOffset, "primary");
  } else if (type === PartitionType.bootloader && subtype === BootloaderSubtype.recovery) {
    offset = needBootloaderOffset(opts.recoveryBootloaderOffset, "recovery");
  } else if (type === PartitionType.partition_table && subtype === PartitionTableSubtype.primary) {
    offset = tableOffset;
  } else {
    offset = offsetText === "" ? null : field("offset-invalid", () => parseIntField(offsetText));
  }

  let size: number;
  if (type === PartitionType.bootloader) {
    size = tableOffset - needBootloaderOffset(opts.primaryBootloaderOffset, "primary");
  } else if (type === PartitionType.partition_table) {
    size = PARTITION_TABLE_SIZE;
  } else {
    if (sizeText === "") fail("size-empty", "Size field can't be empty", lineNo);
    size = field("size-invalid", () => parseIntField(sizeText));
  }

  // Colon-separated and not stripped: "encrypted: readonly" has an unknown flag " readonly".
  let encrypted = false;
  let readonly = false;
  for (const flag of flagsText.split(":")) {
    if (flag === "encrypted") encrypted = true;
    else if (flag === "readonly") readonly = true; // v5.2+
    else if (flag.length > 0) fail("flag-unknown", `CSV flag column contains unknown flag '${flag}'`, lineNo);
  }

  return { name, type, subtype, offset, size, encrypted, readonly, line: lineNo };
}

// ---------------------------------------------------------------------------------------------
// Table verification (gen_esp32part verify(), also run on binary input)

const UTF8 = new TextEncoder();

/**
 * gen_esp32part's verify() plus --flash-size, plus the simulator's own OTA-slot rules.
 * Throws PartitionTableError on the first broken rule (in gen_esp32part's order); returns warnings.
 */
export function verifyPartitionTable(parts: readonly Partition[], opts: VerifyOptions = {}): PartitionWarning[] {
  const tableOffset = opts.tableOffset ?? PARTITION_TABLE_OFFSET;
  const fail = (rule: string, message: string, p?: Partition): never => {
    throw new PartitionTableError(rule, message, { line: p?.line, fileName: opts.fileName });
  };
  const warnings: PartitionWarning[] = [];

  for (const p of parts) {
    const invalid = (rule: string, message: string): never => fail(rule, `Partition ${p.name} invalid: ${message}`, p);
    // Not a gen_esp32part check: it would crash in struct.pack when writing the binary.
    checkRange(p, invalid);
    const align = offsetAlignment(p.type);
    if (p.offset % align !== 0) invalid("offset-align", `Offset ${hex(p.offset)} is not aligned to ${hex(align)}`);
    if (p.type === PartitionType.app) {
      const sizeAlign = appSizeAlignment(opts.secureV1);
      if (p.size % sizeAlign !== 0) invalid("size-align", `Size ${hex(p.size)} is not aligned to ${hex(sizeAlign)}`);
    }
    warnings.push(...nameWarnings(p));
    if (
      p.type === PartitionType.data &&
      (p.subtype === DataSubtype.ota || p.subtype === DataSubtype.coredump) &&
      p.readonly
    ) {
      invalid(
        "readonly-not-allowed",
        `'${p.name}' partition of type ${p.type} and subtype ${p.subtype} is always read-write and cannot be read-only`,
      );
    }
    // v5.5+: read/write NVS needs at least 3 sectors.
    if (p.type === PartitionType.data && p.subtype === DataSubtype.nvs && p.size < NVS_RW_MIN_SIZE && !p.readonly) {
      invalid(
        "nvs-readonly",
        `'${p.name}' partition of type ${p.type} and subtype ${p.subtype} of this size (${hex(p.size)}) must be ` +
          `flagged as 'readonly' (the size of read/write NVS has to be at least ${hex(NVS_RW_MIN_SIZE)})`,
      );
    }
  }

  const seen = new Set<string>();
  for (const p of parts) {
    if (seen.has(p.name)) fail("name-unique", `Partition names must be unique ('${p.name}' appears twice)`, p);
    seen.add(p.name);
  }

  const byOffset = [...parts].sort((a, b) => a.offset - b.offset);
  let last: Partition | undefined;
  for (const p of byOffset) {
    const firstFree = tableOffset + PARTITION_TABLE_SIZE;
    if (p.offset < firstFree && !isPrimary(p.type, p.subtype)) {
      fail("below-table", `Partition offset ${hex(p.offset)} is below ${hex(firstFree)}`, p);
    }
    if (last !== undefined && p.offset < last.offset + last.size) {
      fail(
        "overlap",
        `Partition at ${hex(p.offset)} overlaps ${hex(last.offset)}-${hex(last.offset + last.size - 1)}`,
        p,
      );
    }
    last = p;
  }

  checkOtadata(parts, DataSubtype.ota, "otadata", `type="data"(1) and subtype="ota"(0)`, fail);
  checkOtadata(parts, DataSubtype.tee_ota, "TEE otadata", `type="data"(1) and subtype="tee_ota"(0x90)`, fail);

  if (opts.flashSize !== undefined && last !== undefined) {
    const end = last.offset + last.size; // gen_esp32part: end of the partition with the highest offset
    if (opts.flashSize < end) {
      const mb = 1024 * 1024;
      fail(
        "flash-size",
        `Partitions tables occupies ${(end / mb).toFixed(1)}MB of flash (${end} bytes) which does not fit in ` +
          `configured flash size ${opts.flashSize / mb}MB`,
        last,
      );
    }
  }

  if (opts.simulatorRules ?? true) checkOtaSlots(parts, fail);
  return warnings;
}

function checkRange(p: Partition, invalid: (rule: string, message: string) => never): void {
  const u32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
  const u8 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xff;
  if (!u8(p.type)) invalid("range", `type ${p.type} does not fit in one byte`);
  if (!u8(p.subtype)) invalid("range", `subtype ${p.subtype} does not fit in one byte`);
  if (!u32(p.offset)) invalid("range", `offset ${hex(p.offset)} does not fit in 32 bits`);
  if (!u32(p.size)) invalid("range", `size ${hex(p.size)} does not fit in 32 bits`);
}

function nameWarnings(p: Partition): PartitionWarning[] {
  const out: PartitionWarning[] = [];
  const warn = (rule: PartitionWarning["rule"], message: string) =>
    out.push({ rule, name: p.name, message, ...(p.line !== undefined ? { line: p.line } : {}) });
  const bytes = UTF8.encode(p.name).length;
  if (bytes > PARTITION_NAME_MAX) {
    // gen_esp32part packs the label with struct '16s' and truncates without a word.
    warn(
      "name-truncated",
      `Partition name '${p.name}' is ${bytes} bytes; the binary label keeps only the first ${PARTITION_NAME_MAX}`,
    );
  }
  const types: Readonly<Record<string, number>> = PartitionType;
  if (Object.hasOwn(types, p.name) && types[p.name] !== p.type) {
    warn(
      "name-keyword",
      `Partition has name '${p.name}' which is a partition type, but does not match this partition's type ` +
        `(${hex(p.type)}). Mistake in partition table?`,
    );
  }
  const isSubtypeName = Object.values(SUBTYPES).some((t) => Object.hasOwn(t, p.name));
  const own = SUBTYPES[p.type];
  if (isSubtypeName && !(own !== undefined && Object.hasOwn(own, p.name) && own[p.name] === p.subtype)) {
    warn(
      "name-keyword",
      `Partition has name '${p.name}' which is a partition subtype, but this partition has non-matching type ` +
        `${hex(p.type)} and subtype ${hex(p.subtype)}. Mistake in partition table?`,
    );
  }
  return out;
}

function checkOtadata(
  parts: readonly Partition[],
  subtype: number,
  label: string,
  what: string,
  fail: (rule: string, message: string, p?: Partition) => never,
): void {
  const rule = subtype === DataSubtype.ota ? "otadata" : "tee-otadata";
  const found = parts.filter((p) => p.type === PartitionType.data && p.subtype === subtype);
  if (found.length > 1) {
    fail(
      `${rule}-multiple`,
      `Found multiple ${label} partitions. Only one partition can be defined with ${what}.`,
      found[1],
    );
  }
  if (found.length === 1 && found[0]!.size !== OTADATA_SIZE) {
    fail(`${rule}-size`, `${label} partition must have size = ${hex(OTADATA_SIZE)}`, found[0]);
  }
}

/**
 * SIMULATOR RULE (not in ESP-IDF): OTA app slots must be ota_0..ota_(N-1), each once. The
 * bootloader counts every app with (subtype & 0xF0) == 0x10 and stores it at ota[subtype & 0xF],
 * while the app's esp_ota_get_app_partition_count() counts ota_0, ota_1, ... up to the first gap;
 * with gaps or duplicates the two compute different N and pick different slots for the same seq.
 */
function checkOtaSlots(parts: readonly Partition[], fail: (rule: string, message: string, p?: Partition) => never): void {
  const bySlot = new Map<number, Partition>();
  for (const p of otaAppPartitions(parts)) {
    const slot = p.subtype & OTA_MASK;
    const other = bySlot.get(slot);
    if (other !== undefined) {
      fail(
        "ota-duplicate",
        `[simulator rule, not ESP-IDF] OTA slot ota_${slot} is used by both '${other.name}' and '${p.name}'; ` +
          `the bootloader would count ${bySlot.size + 1} OTA apps but keep only one for this slot`,
        p,
      );
    }
    bySlot.set(slot, p);
  }
  let expected = 0;
  for (const [slot, p] of bySlot) {
    // otaAppPartitions() is ordered by slot, so the first gap shows up here.
    if (slot !== expected) {
      fail(
        "ota-contiguous",
        `[simulator rule, not ESP-IDF] OTA app slots must be ota_0..ota_${bySlot.size - 1} without gaps: ` +
          `'${p.name}' is ota_${slot} but ota_${expected} is missing (bootloader N=${bySlot.size}, ` +
          `esp_ota_get_app_partition_count()=${expected})`,
        p,
      );
    }
    expected++;
  }
}

// ---------------------------------------------------------------------------------------------
// Binary

const md5 = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash("md5").update(bytes).digest());

/**
 * The binary gen_esp32part writes: entries in the given order, then the MD5 entry (unless
 * md5: false, i.e. --disable-md5sum), then 0xFF up to exactly 0xC00 bytes. Names are UTF-8 and
 * truncated to 16 bytes like struct '16s' (see the name-truncated warning).
 */
export function buildPartitionTableBinary(parts: readonly Partition[], opts: { md5?: boolean } = {}): Uint8Array {
  const withMd5 = opts.md5 ?? true;
  const used = (parts.length + (withMd5 ? 1 : 0)) * PARTITION_ENTRY_SIZE;
  // ">=": the bootloader needs room for a terminator entry (94 entries with MD5, 95 without).
  if (used >= PARTITION_TABLE_MAX_LEN) {
    throw new PartitionTableError(
      "table-too-long",
      `Binary partition table length (${used}) longer than max (${parts.length} entries)`,
    );
  }
  const out = new Uint8Array(PARTITION_TABLE_MAX_LEN).fill(0xff);
  const view = new DataView(out.buffer);
  parts.forEach((p, i) => {
    checkRange(p, (rule, message) => {
      throw new PartitionTableError(rule, `Partition ${p.name} invalid: ${message}`, { entry: i });
    });
    const o = i * PARTITION_ENTRY_SIZE;
    view.setUint16(o, PARTITION_MAGIC, true);
    view.setUint8(o + 2, p.type);
    view.setUint8(o + 3, p.subtype);
    view.setUint32(o + 4, p.offset, true);
    view.setUint32(o + 8, p.size, true);
    out.fill(0, o + 12, o + 28); // NUL-padded label
    out.set(UTF8.encode(p.name).subarray(0, PARTITION_NAME_MAX), o + 12);
    view.setUint32(o + 28, (p.encrypted ? PART_FLAG_ENCRYPTED : 0) | (p.readonly ? PART_FLAG_READONLY : 0), true);
  });
  if (withMd5) {
    const o = parts.length * PARTITION_ENTRY_SIZE;
    view.setUint16(o, PARTITION_MAGIC_MD5, true); // bytes 2..15 stay 0xFF
    out.set(md5(out.subarray(0, o)), o + 16);
  }
  return out;
}

const LABEL = new TextDecoder("utf-8");

/**
 * Reads a table the way the firmware does. First the bootloader's esp_partition_table_verify():
 * at most 96 entries; 0x50AA entries must lie within chipSize; at most one 0xEBEB entry, whose
 * digest must match MD5 of all entries before it; an entry with magic 0xFFFF and type/subtype
 * 0xFF ends the table, except as the first entry; anything else is invalid. Then the app's
 * load_partitions(): entries are taken while magic == 0x50AA, and with requireMd5
 * (CONFIG_PARTITION_TABLE_MD5, default y) a missing MD5 entry is an error.
 *
 * `bytes` is the table sector (0xC00 or 0x1000 bytes); anything shorter reads as erased (0xFF).
 * Returns the app's view with the raw flag bits (is_partition_encrypted() is not applied).
 */
export function readPartitionTable(bytes: Uint8Array, opts: { chipSize: number; requireMd5?: boolean }): Partition[] {
  const table = new Uint8Array(PARTITION_TABLE_MAX_LEN).fill(0xff);
  table.set(bytes.subarray(0, PARTITION_TABLE_MAX_LEN));
  const view = new DataView(table.buffer);
  const chipSize = opts.chipSize >>> 0;
  const fail = (rule: string, message: string, entry: number, espError: string): never => {
    throw new PartitionTableError(rule, message, { entry, espError });
  };

  let md5Seen = false;
  let terminated = false;
  for (let i = 0; i < PARTITION_TABLE_MAX_ENTRIES && !terminated; i++) {
    const o = i * PARTITION_ENTRY_SIZE;
    const magic = view.getUint16(o, true);
    if (magic === PARTITION_MAGIC) {
      const offset = view.getUint32(o + 4, true);
      const size = view.getUint32(o + 8, true);
      // uint32 arithmetic as in the C code: offset + size can wrap past 4 GiB and then passes.
      if (offset > chipSize || ((offset + size) >>> 0) > chipSize) {
        fail(
          "bounds",
          `partition ${i} invalid - offset ${hex(offset)} size ${hex(size)} exceeds flash chip size ${hex(chipSize)}`,
          i,
          "ESP_ERR_INVALID_SIZE",
        );
      }
    } else if (magic === PARTITION_MAGIC_MD5) {
      if (md5Seen) fail("md5-duplicate", "Only one MD5 checksum is allowed", i, "ESP_ERR_INVALID_STATE");
      const digest = md5(table.subarray(0, o));
      const stored = table.subarray(o + 16, o + 32);
      if (!digest.every((b, k) => b === stored[k])) {
        fail(
          "md5-mismatch",
          `Incorrect MD5 checksum (computed ${toHex(digest)}, stored ${toHex(stored)})`,
          i,
          "ESP_ERR_INVALID_STATE",
        );
      }
      md5Seen = true;
    } else if (magic === 0xffff && table[o + 2] === 0xff && table[o + 3] === 0xff && i !== 0) {
      terminated = true; // only magic/type/subtype are checked, not the whole 32 bytes
    } else if (i === 0 && magic === 0xffff) {
      fail("empty", "partition table is empty (first entry erased)", i, "ESP_ERR_INVALID_STATE");
    } else {
      fail("magic", `partition ${i} invalid magic number ${hex(magic)}`, i, "ESP_ERR_INVALID_STATE");
    }
  }
  if (!terminated) {
    fail("no-terminator", "partition table has no terminating entry, not valid", PARTITION_TABLE_MAX_ENTRIES, "ESP_ERR_INVALID_STATE");
  }

  // App side. It stops at the first non-0x50AA entry, so entries after an MD5 entry placed
  // mid-table (which the bootloader accepts) are invisible to the app.
  const parts: Partition[] = [];
  let appMd5 = false;
  for (let i = 0; i < PARTITION_TABLE_MAX_ENTRIES; i++) {
    const o = i * PARTITION_ENTRY_SIZE;
    const magic = view.getUint16(o, true);
    if (magic === PARTITION_MAGIC_MD5) {
      appMd5 = true;
      break;
    }
    if (magic !== PARTITION_MAGIC) break;
    const label = table.subarray(o + 12, o + 28);
    const nul = label.indexOf(0);
    const flags = view.getUint32(o + 28, true);
    parts.push({
      name: LABEL.decode(nul < 0 ? label : label.subarray(0, nul)),
      type: table[o + 2]!,
      subtype: table[o + 3]!,
      offset: view.getUint32(o + 4, true),
      size: view.getUint32(o + 8, true),
      encrypted: (flags & PART_FLAG_ENCRYPTED) !== 0,
      readonly: (flags & PART_FLAG_READONLY) !== 0,
    });
  }
  if ((opts.requireMd5 ?? true) && !appMd5) {
    fail("md5-missing", "No MD5 found in partition table (CONFIG_PARTITION_TABLE_MD5)", parts.length, "ESP_ERR_NOT_FOUND");
  }
  return parts;
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------------------------------------
// Lookups and display

/** First match in table order, like esp_partition_find_first(). */
export function findPartition(parts: readonly Partition[], type: number, subtype: number): Partition | undefined {
  return parts.find((p) => p.type === type && p.subtype === subtype);
}

export function findByName(parts: readonly Partition[], name: string): Partition | undefined {
  return parts.find((p) => p.name === name);
}

/** App partitions the bootloader treats as OTA slots, ordered by slot index (subtype & 0x0F). */
export function otaAppPartitions(parts: readonly Partition[]): Partition[] {
  return parts
    .filter((p) => p.type === PartitionType.app && (p.subtype & 0xf0) === OTA_FLAG)
    .sort((a, b) => (a.subtype & OTA_MASK) - (b.subtype & OTA_MASK));
}

function byte(n: number): string {
  return `0x${n.toString(16).padStart(2, "0")}`;
}

function keyOf(table: Readonly<Record<string, number>> | undefined, value: number): string | undefined {
  return table === undefined ? undefined : Object.keys(table).find((k) => table[k] === value);
}

export function typeName(type: number): string {
  return keyOf(PartitionType, type) ?? byte(type);
}

export function subtypeName(type: number, subtype: number): string {
  return keyOf(SUBTYPES[type], subtype) ?? byte(subtype);
}

function humanSize(n: number): string {
  const units: [number, string][] = [
    [1024 ** 2, "MiB"],
    [1024, "KiB"],
  ];
  for (const [scale, unit] of units) {
    if (n >= scale) return `${Number((n / scale).toFixed(3))} ${unit}`;
  }
  return `${n} B`;
}

/** A fixed-width table: name, type, subtype, offset, size (hex and human), flags. */
export function formatTable(parts: readonly Partition[]): string {
  const header = ["Name", "Type", "SubType", "Offset", "Size", "Flags"];
  const rows = parts.map((p) => [
    p.name,
    typeName(p.type),
    subtypeName(p.type, p.subtype),
    hex(p.offset),
    `${hex(p.size)} (${humanSize(p.size)})`,
    [p.encrypted ? "encrypted" : "", p.readonly ? "readonly" : ""].filter(Boolean).join(":"),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  return [header, ...rows]
    .map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd())
    .join("\n");
}
