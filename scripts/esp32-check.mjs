// npm run esp32:check -- the ESP32 build with the real Moddable SDK tools, up to (not including) the ESP-IDF
// compile: mcconfig processes manifest.json and writes the esp32 makefile; that makefile's own rules run tsc
// (Moddable's tsconfig: TypeScript 6, strict) on every .ts module, xsc on every module, xsid on the native
// sources and xsl, which links all modules into mc.xs.c (the preloaded archive). Then every import of our
// modules must name a module xsl linked. Needs $MODDABLE (SDK 8.2.3 with its host tools built) and
// TypeScript 6 on PATH; no ESP-IDF. Options: --keep (keep the build directory), --verbose.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { kib, linkedModules, projectModuleInputs, unresolvedImports } from "./esp32-check-lib.mjs";
import { caDir, outDir as prebuildDir, prebuild } from "./esp32-prebuild.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const keep = process.argv.includes("--keep");
const verbose = process.argv.includes("--verbose");
const NO_IDF = "/esp32-check/no-esp-idf";
const SETUP = 'see README "Flash to an ESP32" > "Check the build without a board"';

class CheckFailure extends Error {
  constructor(message, details) {
    super(message);
    this.details = details;
  }
}

function fail(message, details = "") {
  throw new CheckFailure(message, details);
}

function report(error) {
  if (!(error instanceof CheckFailure)) throw error;
  if (error.details) process.stderr.write(error.details.endsWith("\n") ? error.details : error.details + "\n");
  console.error(`esp32:check FAILED: ${error.message}`);
  process.exitCode = 1;
}

/** The tools' environment: the SDK's host tools first, and not the project's TypeScript 5 that npm puts on PATH. */
function toolEnvironment(moddable) {
  const hostTools = join(moddable, "build", "bin", process.platform === "darwin" ? "mac" : "lin", "release");
  if (!existsSync(join(hostTools, "mcconfig")))
    fail(`no Moddable host tools in ${hostTools}: build them (${SETUP})`);
  const projectBin = join(root, "node_modules", ".bin");
  const path = (process.env.PATH ?? "").split(delimiter).filter((p) => resolve(p) !== projectBin);
  return { ...process.env, MODDABLE: moddable, PATH: [hostTools, ...path].join(delimiter) };
}

function typescriptVersion(env) {
  const tsc = spawnSync("tsc", ["-v"], { env, encoding: "utf8" });
  const version = /Version (\d+)\.(\S+)/.exec(tsc.stdout ?? "");
  if (!version || Number(version[1]) < 6)
    fail(`mcconfig needs TypeScript 6 or later as \`tsc\` on PATH (found ${version ? version[0] : "none"}; ${SETUP})`);
  return `${version[1]}.${version[2]}`;
}

/** Runs a tool; on failure prints its output (the tsc/xsc/xsl diagnostics) and fails with `what`. */
function run(what, command, args, options) {
  const result = spawnSync(command, args, { ...options, encoding: "utf8", maxBuffer: 64 << 20 });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  if (verbose) process.stdout.write(output);
  if (result.error) fail(`${what}: ${result.error.message}`);
  if (result.status !== 0) fail(`${what} (exit ${result.status})`, verbose ? "" : output);
  return output;
}

function findFile(dir, name) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isFile() && entry.name === name) return path;
    if (entry.isDirectory()) {
      const found = findFile(path, name);
      if (found) return found;
    }
  }
  return undefined;
}

const moddable = process.env.MODDABLE;
if (!moddable) {
  console.error(`esp32:check needs the Moddable SDK 8.2.3 with its host tools built and $MODDABLE set to it (${SETUP})`);
  process.exit(2);
}
try {
  await check(resolve(moddable));
} catch (error) {
  report(error);
}

async function check(moddable) {
  const env = toolEnvironment(moddable);
  const sdkVersion = readFileSync(join(moddable, "tools", "VERSION"), "utf8").trim();
  if (sdkVersion !== "8.2.3") console.warn(`esp32:check: warning: Moddable SDK ${sdkVersion}; the build is written for 8.2.3`);
  const tsVersion = typescriptVersion(env);
  if (!existsSync(join(prebuildDir, "tweetnacl.js")) || !existsSync(join(prebuildDir, "tweetnacl.d.ts")) || !existsSync(join(caDir, "ota-ca.der"))) await prebuild();

  const work = mkdtempSync(join(tmpdir(), "esp32-check-"));
  console.log(`esp32:check: Moddable ${sdkVersion}, TypeScript ${tsVersion}, building in ${work} (a few minutes)`);
  try {
    build(env, work);
  } finally {
    if (keep) console.log(`esp32:check: build kept in ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

function build(env, work) {
  // 1. mcconfig without -m: manifest processing, config/partitions/sdkconfig merge, makefile and tsconfigs.
  //    (With -m it would run make itself, and for esp32 it first insists on $IDF_PATH.)
  const mcconfig = run("mcconfig", "mcconfig", ["-d", "-p", "esp32", "-o", work, "manifest.json"], { cwd: root, env });
  const problems = mcconfig.split("\n").filter((line) => /warning|error/i.test(line));
  if (problems.length) fail("mcconfig reported problems with manifest.json", problems.join("\n"));
  const makefile = findFile(join(work, "tmp"), "makefile");
  if (!makefile) fail(`mcconfig wrote no makefile under ${work}`);

  // 2. The generated makefile's own rules, up to its xsl step. The makefile stops at parse time without an
  //    ESP-IDF checkout (IDF_PATH, and IDF_VERSION from git describe in it): placeholders stand in, and none
  //    of the rules that run here reads them. mc.xs.c also depends on ESP-IDF's sdkconfig.h (idf.py
  //    reconfigure); `-o` tells make to take it as present and not remake it. Nothing here compiles C.
  const noIdf = [`IDF_PATH=${NO_IDF}`, "IDF_VERSION=none"];
  const variable = (name) => {
    const args = ["-f", makefile, ...noIdf, "--no-print-directory", "--eval", "esp32-check-print-%: ; @echo $($*)"];
    const printed = spawnSync("make", [...args, `esp32-check-print-${name}`], { cwd: dirname(makefile), env, encoding: "utf8" });
    if (printed.status !== 0 || !printed.stdout.trim()) fail(`cannot read ${name} from ${makefile}`, printed.stderr);
    return printed.stdout.trim();
  };
  const vars = { TMP_DIR: variable("TMP_DIR"), MODULES_DIR: variable("MODULES_DIR") };
  const mcXsC = join(vars.TMP_DIR, "mc.xs.c");
  const result = spawnSync("make", ["-f", makefile, ...noIdf, "-o", variable("SDKCONFIG_H"), mcXsC], {
    cwd: dirname(makefile),
    env,
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  // The makefile's IDF_VERSION line still runs `cd $(IDF_PATH)`: its complaint is noise here.
  const log = `${result.stdout}${result.stderr}`.split("\n").filter((line) => !line.includes(NO_IDF)).join("\n");
  if (verbose) process.stdout.write(log);
  if (result.status !== 0) {
    const step = /# typescript compile failure/.test(log) ? "tsc" : /# xsl modules/.test(log) ? "xsl" : "xsc/xsid";
    const diagnostics = log.split("\n").filter((line) => !/^# (xsc|xsid|tsc) /.test(line)).join("\n");
    fail(`${step} failed (make exit ${result.status})`, verbose ? "" : diagnostics);
  }

  // Warnings about our own sources (none today) are shown, not fatal.
  const ourWarnings = log.split("\n").filter((line) => line.includes(root + "/") && /warning/i.test(line));
  for (const line of ourWarnings) console.warn(`esp32:check: ${line}`);

  // 3. What xsl linked, and whether every import of our modules names one of those modules.
  const modules = linkedModules(readFileSync(mcXsC, "utf8"));
  const inputs = projectModuleInputs(readFileSync(makefile, "utf8"), vars, root);
  const ours = modules.filter((m) => inputs.has(m.name));
  if (ours.length !== inputs.size) {
    const absent = [...inputs.keys()].filter((name) => !modules.some((m) => m.name === name));
    fail(`xsl did not link ${absent.join(", ")}`);
  }
  const sources = new Map([...inputs].map(([name, file]) => [name, readFileSync(file, "utf8")]));
  const missing = unresolvedImports(sources, modules.map((m) => m.name));
  if (missing.length)
    fail(
      `${missing.length} import(s) name no module in the archive`,
      missing.map((m) => `  ${m.module} imports "${m.specifier}" (${m.target})`).join("\n"),
    );

  const total = modules.reduce((sum, m) => sum + m.codeBytes, 0);
  const ourBytes = ours.reduce((sum, m) => sum + m.codeBytes, 0);
  const heapSlots = /#define mxHeapCount (\d+)/.exec(readFileSync(mcXsC, "utf8"))?.[1] ?? "?";
  console.log(
    `esp32:check OK: ${modules.length} modules linked by xsl (${ours.length} of ours, every import resolved), ` +
      `byte code ${kib(total)} (ours ${kib(ourBytes)}), preloaded heap ${heapSlots} slots; ESP-IDF compile not run`,
  );
}
