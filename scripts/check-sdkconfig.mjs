// Checks that every CONFIG_ symbol sdkconfig/sdkconfig.defaults names (set, or in a comment such as the
// anti-rollback opt-in) exists in ESP-IDF v6.0, the version Moddable 8.2.3 builds with: an unknown symbol in
// sdkconfig.defaults is silently ignored by the build, so a misspelt or newer-IDF option would not do anything.
//   node scripts/check-sdkconfig.mjs [--sdkconfig FILE]   against test/fixtures/esp-idf-v6.0-kconfig.json
//   IDF_PATH=<ESP-IDF checkout> node scripts/check-sdkconfig.mjs [--write]
//        against that checkout's Kconfig files (a bare git repository too, at IDF_REF, default v6.0); --write
//        regenerates the fixture from it (the symbols of sdkconfig.defaults and the Kconfig file defining each).
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const FIXTURE = join(root, "test/fixtures/esp-idf-v6.0-kconfig.json");
const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};

/** CONFIG_ symbols the file sets or mentions, without the prefix, in order of first mention. */
export function sdkconfigSymbols(text) {
  return [...new Set([...text.matchAll(/\bCONFIG_([A-Z0-9_]+)\b/g)].map((m) => m[1]))];
}

/** symbol → defining Kconfig file, for the symbols asked, from an ESP-IDF working tree or a bare repository. */
function kconfigDefinitions(idfPath, ref, symbols) {
  const found = {};
  const define = (file, text) => {
    for (const m of text.matchAll(/^\s*(?:menu)?config\s+([A-Z0-9_]+)\s*$/gm)) if (symbols.includes(m[1]) && !found[m[1]]) found[m[1]] = file;
  };
  if (existsSync(join(idfPath, "components"))) {
    const walk = (dir) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) {
          if (name !== ".git") walk(path);
        } else if (name.startsWith("Kconfig")) define(relative(idfPath, path), readFileSync(path, "utf8"));
      }
    };
    walk(join(idfPath, "components"));
  } else {
    const pattern = `^\\s*(menu)?config (${symbols.join("|")})\\s*$`;
    let out = "";
    try {
      out = execFileSync("git", ["-C", idfPath, "grep", "-n", "-E", pattern, ref, "--", "*Kconfig*"], { encoding: "utf8", maxBuffer: 1 << 24 });
    } catch (e) {
      if (e.status !== 1) throw e; // 1: no match
    }
    for (const line of out.split("\n").filter(Boolean)) {
      const [, file, , text] = /^[^:]+:([^:]+):(\d+):(.*)$/.exec(line) ?? [];
      if (file) define(file, text);
    }
  }
  return found;
}

function main() {
  const sdkconfig = resolve(arg("--sdkconfig") ?? join(root, "sdkconfig/sdkconfig.defaults"));
  const symbols = sdkconfigSymbols(readFileSync(sdkconfig, "utf8"));
  const idfPath = process.env.IDF_PATH;
  const ref = process.env.IDF_REF ?? "v6.0";
  let known;
  let source;
  if (idfPath) {
    known = kconfigDefinitions(idfPath, ref, symbols);
    source = `${idfPath} (${existsSync(join(idfPath, "components")) ? "working tree" : ref})`;
    if (process.argv.includes("--write")) {
      const fixture = { idf_version: ref, source: "ESP-IDF Kconfig files (scripts/check-sdkconfig.mjs --write)", symbols: known };
      writeFileSync(FIXTURE, JSON.stringify(fixture, null, 2) + "\n");
      console.log(`check-sdkconfig: wrote ${relative(root, FIXTURE)} (${Object.keys(known).length} symbols from ${source})`);
    }
  } else {
    const fixture = JSON.parse(readFileSync(FIXTURE, "utf8"));
    known = fixture.symbols;
    source = `${relative(root, FIXTURE)} (ESP-IDF ${fixture.idf_version})`;
  }
  const missing = symbols.filter((s) => !known[s]);
  if (missing.length > 0) {
    console.error(`check-sdkconfig: ${relative(root, sdkconfig)} names symbols ESP-IDF does not define per ${source}: ${missing.map((s) => "CONFIG_" + s).join(", ")}`);
    process.exit(1);
  }
  console.log(`check-sdkconfig: all ${symbols.length} CONFIG_ symbols of ${relative(root, sdkconfig)} are defined per ${source}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
