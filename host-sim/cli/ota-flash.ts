// ota-flash: a user's tool for simulated ESP32 flashes, in the spirit of ESP-IDF's otatool and parttool.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";
import { BEHAVIOURS, type Behaviour, type ImageInfo } from "../../esp-image/app-image";
import { buildAppImage, chipName, ImageVerifyError, inspectImage } from "../../esp-image/app-image";
import { runBootloader } from "../esp/bootloader";
import { EspError } from "../esp/esp-err";
import { EspOta, loadPartitionTable, OTA_WITH_SEQUENTIAL_WRITES, partitionAppDesc, verifyPartitionImage } from "../esp/esp-ota";
import { crcOk, Otadata, stateName } from "../esp/otadata";
import type { Partition } from "../esp/partition-table";
import { findByName, formatTable, parsePartitionCsv, parseSize, PartitionTableError } from "../esp/partition-table";
import { createDeviceFlash, DEFAULT_FLASH_SIZE, programPartition, PROJECT_PARTITIONS_CSV } from "../device-flash";
import { FlashError, NorFlash } from "../flash/nor-flash";
import { clearRunning, readRunning, writeRunning } from "../running-slot";
import { runTour } from "./tour";
import { parseArgsMessage, usageOf, wantsHelp } from "./usage";

const USAGE = `usage:
  ota-flash create FLASH.bin [--partitions partitions.csv] [--size 4MB] [--image APP.bin]
  ota-flash image build OUT.bin --version 1.2.3 [--size BYTES] [--secure-version N]
                        [--behaviour healthy|fail-self-test|crash|hang|crash-after-confirm] [--project NAME]
  ota-flash image info FILE.bin [--json]
  ota-flash install FLASH.bin IMAGE.bin     begin/write/end/set_boot on the next update slot
  ota-flash boot FLASH.bin                  run the bootloader once (applies its otadata transitions)
  ota-flash confirm FLASH.bin               esp_ota_mark_app_valid_cancel_rollback
  ota-flash reject FLASH.bin                esp_ota_mark_app_invalid_rollback_and_reboot
  ota-flash info FLASH.bin [--json]         partitions, otadata, boot decision, slot contents
  ota-flash tour [DIR]                      a short runnable tour of the simulator`;

/** A user error: printed as one line, exit code 1 (2 for usage). */
class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

type Out = (line: string) => void;

export async function main(argv: string[], out: Out = (l) => console.log(l), err: Out = (l) => console.error(l)): Promise<number> {
  try {
    await dispatch(argv, out);
    return 0;
  } catch (e) {
    if (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS")) {
      err(`ota-flash: ${parseArgsMessage(e)}`);
      err(`  (see \`${helpCommand(argv)}\`)`);
      return 2;
    }
    if (e instanceof CliError) {
      err(`ota-flash: ${e.message}`);
      if (e.exitCode === 2) err(`  (see \`${helpCommand(argv)}\`)`);
      return e.exitCode;
    }
    if (e instanceof EspError || e instanceof FlashError || e instanceof PartitionTableError || e instanceof ImageVerifyError) {
      err(`ota-flash: ${e.message}`);
      return 1;
    }
    if (e instanceof Error && "code" in e && typeof e.code === "string" && e.code.startsWith("E")) {
      err(`ota-flash: ${e.message}`); // file system errors: ENOENT, EISDIR, EACCES...
      return 1;
    }
    throw e;
  }
}

const COMMANDS = ["create", "image", "install", "boot", "confirm", "reject", "info", "tour"];

/** The help line for what the user tried: `ota-flash image info --help`, or the general one. */
function helpCommand(argv: string[]): string {
  const [cmd, sub] = argv;
  if (!cmd || !COMMANDS.includes(cmd)) return "ota-flash --help";
  return `ota-flash ${cmd}${cmd === "image" && (sub === "build" || sub === "info") ? ` ${sub}` : ""} --help`;
}

async function dispatch(argv: string[], out: Out) {
  const [cmd, ...rest] = argv;
  if (cmd !== undefined && cmd !== "help" && wantsHelp(argv)) {
    out(usageOf(USAGE, "ota-flash", argv.filter((a) => !a.startsWith("-"))));
    return;
  }
  switch (cmd) {
    case "create":
      return create(rest, out);
    case "image":
      if (rest[0] === "build") return imageBuild(rest.slice(1), out);
      if (rest[0] === "info") return imageInfo(rest.slice(1), out);
      throw new CliError(`unknown image command ${JSON.stringify(rest[0] ?? "")}`, 2);
    case "install":
      return install(rest, out);
    case "boot":
      return boot(rest, out);
    case "confirm":
      return confirm(rest, out);
    case "reject":
      return reject(rest, out);
    case "info":
      return info(rest, out);
    case "tour":
      return runTour(rest[0], out);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      out(USAGE);
      return;
    default:
      throw new CliError(`unknown command ${JSON.stringify(cmd)}`, 2);
  }
}

function positionals(args: string[], names: string[], options: ParseArgsConfig["options"] = {}) {
  const parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  if (parsed.positionals.length !== names.length) {
    throw new CliError(`expected ${names.join(" ")}, got ${parsed.positionals.length} argument(s)`, 2);
  }
  return { pos: parsed.positionals, values: parsed.values as Record<string, string | boolean | undefined> };
}

function openFlash(path: string): NorFlash {
  if (!existsSync(path)) throw new CliError(`no such flash file: ${path} (create it with: ota-flash create ${path})`);
  return NorFlash.open(path);
}

function readImageFile(path: string): Uint8Array {
  if (!existsSync(path)) throw new CliError(`no such image file: ${path}`);
  return new Uint8Array(readFileSync(path));
}

/** The app API as the app running on this flash sees it. */
function appApi(flashPath: string, flash: NorFlash): EspOta {
  const partitions = loadPartitionTable(flash);
  const rec = readRunning(flashPath);
  const running = rec?.running ? findByName(partitions, rec.running) ?? null : null;
  return new EspOta(flash, { running }, partitions);
}

function requireRunning(flashPath: string, ota: EspOta) {
  if (!ota.getRunningPartition()) throw new CliError(`no app is running on ${flashPath}: run "ota-flash boot ${flashPath}" first`);
}

function create(args: string[], out: Out) {
  const { pos, values } = positionals(args, ["FLASH.bin"], {
    partitions: { type: "string" },
    size: { type: "string" },
    image: { type: "string" },
  });
  const [path] = pos as [string];
  const size = values.size ? parseSize(String(values.size)) : DEFAULT_FLASH_SIZE;
  const csvPath = String(values.partitions ?? PROJECT_PARTITIONS_CSV);
  if (!existsSync(csvPath)) throw new CliError(`no such partition table: ${csvPath}`);
  const partitions = parsePartitionCsv(readFileSync(csvPath, "utf8"), { flashSize: size, fileName: csvPath });
  const flash = createDeviceFlash({ path, size, partitions });
  clearRunning(path);
  out(`created ${path}: ${size} bytes, partition table at 0x8000 from ${csvPath}`);
  out(formatTable(partitions));
  if (values.image) {
    // Factory programming, as esptool write_flash does: ota_0 gets the image, otadata stays blank.
    const img = readImageFile(String(values.image));
    const ota0 = findByName(partitions, "ota_0");
    if (!ota0) throw new CliError("the partition table has no ota_0 to program");
    programPartition(flash, ota0, img);
    verifyPartitionImage(flash, ota0);
    out(`programmed ${values.image} into ota_0 (otadata blank: the first boot selects ota_0)`);
  }
  flash.close();
}


function imageBuild(args: string[], out: Out) {
  const { pos, values } = positionals(args, ["OUT.bin"], {
    version: { type: "string" },
    size: { type: "string" },
    "secure-version": { type: "string" },
    behaviour: { type: "string" },
    project: { type: "string" },
  });
  if (!values.version) throw new CliError("--version is required", 2);
  const behaviour = String(values.behaviour ?? "healthy") as Behaviour;
  if (!BEHAVIOURS.includes(behaviour)) throw new CliError(`--behaviour must be one of ${BEHAVIOURS.join(", ")}`, 2);
  const secureVersion = values["secure-version"] === undefined ? 0 : Number(values["secure-version"]);
  if (!Number.isInteger(secureVersion) || secureVersion < 0 || secureVersion > 32) throw new CliError("--secure-version must be an integer 0..32");
  const img = buildAppImage({
    version: String(values.version),
    size: values.size === undefined ? undefined : parseSize(String(values.size)),
    secureVersion,
    behaviour,
    projectName: values.project === undefined ? undefined : String(values.project),
  });
  writeFileSync(pos[0]!, img);
  out(`wrote ${pos[0]}: ${img.length} bytes, version ${values.version}, secure_version ${secureVersion}, behaviour ${behaviour}`);
}

function imageInfo(args: string[], out: Out) {
  const { pos, values } = positionals(args, ["FILE.bin"], { json: { type: "boolean" } });
  const bytes = readImageFile(pos[0]!);
  const { info, error } = inspectImage(bytes);
  // Not an app image at all: its "header" would be noise, so one line and exit 1.
  if (error && bytes[0] !== 0xe9 && !values.json) throw new CliError(`${pos[0]} is not an ESP app image (${error.message})`);
  if (values.json) {
    out(JSON.stringify({ file: pos[0], size: bytes.length, ...info, valid: !error, error: error && { check: error.check, message: error.message } }, null, 2));
  } else {
    for (const line of describeImage(info)) out(line);
    out(error ? `verification: FAILED: ${error.message}` : "verification: OK");
  }
  if (error) throw new CliError(`${pos[0]} is not a valid app image: ${error.message}`);
}

function describeImage(info: Partial<ImageInfo>): string[] {
  const lines: string[] = [];
  const h = info.header;
  if (h) {
    lines.push(
      `header: magic 0x${h.magic.toString(16)}, ${h.segmentCount} segments, chip ${chipName(h.chipId)} (id ${h.chipId}), ` +
        `entry 0x${h.entryAddr.toString(16)}, spi mode ${h.spiMode}, chip rev ${h.minChipRevFull}..${h.maxChipRevFull || "any"}, hash appended ${h.hashAppended}`,
    );
  }
  for (const s of info.segments ?? []) {
    lines.push(`  segment ${s.index}: ${s.region.padEnd(7)} load 0x${s.loadAddr.toString(16).padStart(8, "0")} len 0x${s.dataLen.toString(16)} at file offset 0x${s.dataOffset.toString(16)}`);
  }
  if (info.storedChecksum !== undefined) {
    lines.push(`checksum: stored 0x${info.storedChecksum.toString(16)} computed 0x${info.computedChecksum?.toString(16)} at 0x${info.checksumOffset?.toString(16)}`);
  }
  if (info.computedSha256) lines.push(`sha256: ${info.computedSha256}${info.storedSha256 ? (info.storedSha256 === info.computedSha256 ? " (matches appended)" : ` (appended: ${info.storedSha256})`) : ""}`);
  const d = info.appDesc;
  if (d) {
    lines.push(`app: ${d.projectName} version ${d.version}, secure_version ${d.secureVersion}, idf ${d.idfVer}, built ${d.date} ${d.time}`);
  } else if (info.header) {
    lines.push("app: no esp_app_desc_t (magic 0xABCD5432) at offset 0x20");
  }
  if (info.sim) lines.push(`simulated behaviour: ${info.sim.behaviour}`);
  return lines;
}

function install(args: string[], out: Out) {
  const { pos } = positionals(args, ["FLASH.bin", "IMAGE.bin"]);
  const flash = openFlash(pos[0]!);
  const img = readImageFile(pos[1]!);
  const ota = appApi(pos[0]!, flash);
  const target = ota.getNextUpdatePartition();
  if (!target) throw new CliError("the partition table has no OTA slots");
  const h = ota.begin(target, OTA_WITH_SEQUENTIAL_WRITES);
  for (let off = 0; off < img.length; off += 4096) ota.write(h, img.subarray(off, off + 4096));
  const verified = ota.end(h);
  ota.setBootPartition(target);
  out(`installed ${pos[1]} (version ${verified.appDesc?.version ?? "?"}) into ${target.name}; next boot: ${target.name} (state NEW)`);
  flash.close();
}

function boot(args: string[], out: Out) {
  const { pos } = positionals(args, ["FLASH.bin"]);
  const flash = openFlash(pos[0]!);
  const r = runBootloader(flash);
  for (const line of r.log) out(`  ${line}`);
  writeRunning(pos[0]!, { running: r.partition?.name ?? null, version: r.image?.appDesc?.version ?? null, bootedAt: new Date().toISOString() });
  const state = r.partition ? describeState(new EspOta(flash, { running: r.partition }), r.partition) : null;
  flash.close();
  if (!r.partition) throw new CliError("no bootable app: the device resets forever");
  out(`booted ${r.partition.name}: version ${r.image?.appDesc?.version ?? "?"}${state ? `, state ${state}` : ""}`);
}

function confirm(args: string[], out: Out) {
  const { pos } = positionals(args, ["FLASH.bin"]);
  const flash = openFlash(pos[0]!);
  const ota = appApi(pos[0]!, flash);
  requireRunning(pos[0]!, ota);
  ota.markAppValidCancelRollback();
  out(`confirmed ${ota.getRunningPartition()!.name}: state VALID`);
}

function reject(args: string[], out: Out) {
  const { pos } = positionals(args, ["FLASH.bin"]);
  const flash = openFlash(pos[0]!);
  const ota = appApi(pos[0]!, flash);
  requireRunning(pos[0]!, ota);
  ota.markAppInvalidRollback();
  out(`rejected ${ota.getRunningPartition()!.name}: state INVALID; rebooting`);
  flash.close();
  boot([pos[0]!], out);
}

function describeState(ota: EspOta, p: Partition): string | null {
  try {
    return stateName(ota.getStatePartition(p));
  } catch {
    return null;
  }
}

function info(args: string[], out: Out) {
  const { pos, values } = positionals(args, ["FLASH.bin"], { json: { type: "boolean" } });
  const flash = openFlash(pos[0]!);
  const ota = appApi(pos[0]!, flash);
  const entries = ota.otadata ? new Otadata(flash, ota.otadata.partition).read() : null;
  const decision = runBootloader(flash, { dryRun: true });
  const slots = ota.otaSlots.map((p) => {
    let verified: string | null = null;
    try {
      verifyPartitionImage(flash, p);
    } catch (e) {
      if (!(e instanceof ImageVerifyError)) throw e;
      verified = e.message;
    }
    const desc = partitionAppDesc(flash, p);
    return { name: p.name, offset: p.offset, size: p.size, version: desc?.version ?? null, secureVersion: desc?.secureVersion ?? null, state: describeState(ota, p), image: verified ?? "valid" };
  });
  const otadata = entries?.map((e, i) => ({ sector: i, seq: e.seq, state: stateName(e.state), crcOk: crcOk(e) })) ?? null;
  const result = {
    flash: pos[0],
    size: flash.size,
    partitions: ota.partitions.map(({ name, type, subtype, offset, size, encrypted, readonly }) => ({ name, type, subtype, offset, size, encrypted, readonly })),
    otadata,
    running: ota.getRunningPartition()?.name ?? null,
    nextBoot: { partition: decision.partition?.name ?? null, version: decision.image?.appDesc?.version ?? null, log: decision.log },
    slots,
  };
  if (values.json) {
    out(JSON.stringify(result, null, 2));
    return;
  }
  out(`${pos[0]}: ${flash.size} bytes`);
  out(formatTable(ota.partitions));
  out("otadata:");
  for (const e of otadata ?? []) {
    out(`  [${e.sector}] ${e.seq === 0xffffffff ? "blank" : `seq ${e.seq}, state ${e.state}, crc ${e.crcOk ? "ok" : "BAD"}`}`);
  }
  for (const s of slots) out(`${s.name}: ${s.version ? `version ${s.version}` : "no app"}, image ${s.image}${s.state ? `, state ${s.state}` : ""}`);
  out(`running: ${result.running ?? "nothing booted yet"}`);
  out(`next boot: ${result.nextBoot.partition ?? "NOTHING BOOTABLE"}${result.nextBoot.version ? ` (version ${result.nextBoot.version})` : ""}`);
}
