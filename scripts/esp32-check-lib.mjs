// Pure helpers of esp32-check.mjs (kept apart so test/esp32-check.test.ts can run them without the SDK).
import { posix } from "node:path";

/**
 * The modules xsl linked, from the gxScripts table of the mc.xs.c it writes: one row per module with its
 * name and the size of its byte code (0 when the module is preloaded or only native).
 */
export function linkedModules(mcXsC) {
  const table = /static const txScript gxScripts\[mxScriptsCount\] = \{([\s\S]*?)\n\};/.exec(mcXsC);
  if (!table) throw new Error("mc.xs.c has no gxScripts table: not written by xsl");
  const modules = [];
  // { callback, symbols, symbolsSize, code, codeSize, hosts, hostsSize, path, version }
  const row = /\{\s*\w+,\s*\w+,\s*\d+,\s*(?:NULL|\(txS1\*\)gxCode\d+),\s*(\d+),\s*\w+,\s*\d+,\s*"([^"]+)"/g;
  for (const m of table[1].matchAll(row)) modules.push({ name: m[2], codeBytes: Number(m[1]) });
  if (modules.length === 0) throw new Error("mc.xs.c lists no modules");
  return modules;
}

/** Module specifiers a compiled ES module imports statically (or with a literal dynamic import). */
export function importSpecifiers(js) {
  const out = [];
  for (const m of js.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/gm)) out.push(m[1]);
  for (const m of js.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) out.push(m[1]);
  for (const m of js.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) out.push(m[1]);
  return out;
}

/** XS resolves "./x" and "../x" against the importing module's name; anything else is a module name. */
export function resolveSpecifier(importer, specifier) {
  return specifier.startsWith(".") ? posix.join(posix.dirname(importer), specifier) : specifier;
}

/**
 * Imports of our own modules that name no linked module: on the chip they fail at run time (xsl only
 * resolves the imports of preloaded modules, and ours are not preloaded).
 * `sources` maps a module name to its compiled JavaScript.
 */
export function unresolvedImports(sources, linkedNames) {
  const linked = new Set(linkedNames);
  const missing = [];
  for (const [name, js] of sources)
    for (const specifier of importSpecifiers(js)) {
      const target = resolveSpecifier(name, specifier);
      if (!linked.has(target)) missing.push({ module: name, specifier, target });
    }
  return missing;
}

/**
 * Our modules and the file xsc compiled each from, out of the generated makefile's rules
 * `$(MODULES_DIR)/<name>.xsb: <input>` (the input is tsc's output for a .ts module).
 */
export function projectModuleInputs(makefile, vars, projectRoot) {
  const expand = (text) => text.replace(/\$\((\w+)\)/g, (all, v) => vars[v] ?? all);
  const inputs = new Map();
  for (const m of makefile.matchAll(/^\$\(MODULES_DIR\)\/(.+)\.xsb\s*:\s*(\S+)/gm)) {
    const input = expand(m[2]);
    const compiledTs = input.startsWith(`${vars.TMP_DIR}/tsc/`) && input.includes(projectRoot + "/");
    if (input.startsWith(projectRoot + "/") || compiledTs)
      inputs.set(m[1].replace(/^~\.embedded\//, "embedded:"), input);
  }
  return inputs;
}

/** "1.2 KiB" */
export function kib(bytes) {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}
