// The parts of `npm run esp32:check` that judge the Moddable tools' output (the check itself needs the SDK
// and is not part of npm test): reading xsl's module table, and resolving our modules' imports against it.
import { describe, expect, it } from "vitest";
// @ts-expect-error -- plain .mjs script without types
import * as lib from "../scripts/esp32-check-lib.mjs";

interface Linked {
  name: string;
  codeBytes: number;
}
interface Missing {
  module: string;
  specifier: string;
  target: string;
}
const { linkedModules, importSpecifiers, unresolvedImports, projectModuleInputs } = lib as {
  linkedModules(mcXsC: string): Linked[];
  importSpecifiers(js: string): string[];
  unresolvedImports(sources: Map<string, string>, linked: string[]): Missing[];
  projectModuleInputs(makefile: string, vars: Record<string, string>, root: string): Map<string, string>;
};

// The shape xsl 8.2.3 writes (rows abridged from a real mc.xs.c of this project).
const V = "{ XS_MAJOR_VERSION, XS_MINOR_VERSION, XS_PATCH_VERSION, 0 }";
const MC_XS_C = `#define mxHeapCount 4692
static const txScript gxScripts[mxScriptsCount] = {
\t{ xsHostModule6, NULL, 0, NULL, 0, NULL, 0, "timer", ${V} },
\t{ xsHostModule35, NULL, 0, NULL, 0, NULL, 0, "embedded:storage/flash", ${V} },
\t{ xsHostModule36, NULL, 0, (txS1*)gxCode36, 343, NULL, 0, "esp32/native/espota", ${V} },
\t{ NULL, NULL, 0, (txS1*)gxCode40, 1313, NULL, 0, "main", ${V} },
\t{ NULL, NULL, 0, (txS1*)gxCode41, 10980, NULL, 0, "core/agent", ${V} }
};
`;

describe("esp32:check helpers", () => {
  it("reads the modules xsl linked and their byte-code sizes from mc.xs.c", () => {
    expect(linkedModules(MC_XS_C)).toEqual([
      { name: "timer", codeBytes: 0 },
      { name: "embedded:storage/flash", codeBytes: 0 },
      { name: "esp32/native/espota", codeBytes: 343 },
      { name: "main", codeBytes: 1313 },
      { name: "core/agent", codeBytes: 10980 },
    ]);
    expect(() => linkedModules("/* not xsl output */")).toThrow(/gxScripts/);
  });

  it("finds static, side-effect, re-export and literal dynamic imports in tsc's output", () => {
    const js = [
      'import config from "mc/config";',
      'import { Agent,\n  other } from "./core/agent";',
      'export * from "./errors";',
      'import "./side-effect";',
      'const later = await import("./lazy");',
      'const text = "import x from \'not-code\'";',
    ].join("\n");
    expect(importSpecifiers(js)).toEqual(["mc/config", "./core/agent", "./errors", "./side-effect", "./lazy"]);
  });

  it("resolves relative imports against the importing module's name, as XS does", () => {
    const linked = linkedModules(MC_XS_C).map((m) => m.name);
    const sources = new Map([
      ["main", 'import { Agent } from "./core/agent";\nimport Timer from "timer";'],
      ["esp32/ota", 'import EspOta from "./native/espota";\nimport Flash from "embedded:storage/flash";'],
    ]);
    expect(unresolvedImports(sources, linked)).toEqual([]);
  });

  it("reports an import that names no linked module", () => {
    const linked = linkedModules(MC_XS_C).map((m) => m.name);
    const sources = new Map([
      ["esp32/log", 'import File from "file";'],
      ["core/agent", 'import { x } from "../esp32/native/espota";\nimport { y } from "./agent-helpers";'],
    ]);
    expect(unresolvedImports(sources, linked)).toEqual([
      { module: "esp32/log", specifier: "file", target: "file" },
      { module: "core/agent", specifier: "./agent-helpers", target: "core/agent-helpers" },
    ]);
  });

  it("takes our modules (tsc output of our .ts, our .js) from the generated makefile, not the SDK's", () => {
    const makefile = [
      "$(MODULES_DIR)/timer.xsb: /sdk/modules/base/timer/timer.js",
      "$(MODULES_DIR)/~.embedded/storage/flash.xsb: /sdk/modules/io/flash/esp32/flash-esp32.js",
      "$(MODULES_DIR)/esp32/native/espota.xsb: /repo/device/esp32/native/espota.js",
      "$(MODULES_DIR)/mc/config.xsb: /tmp/b/mc.config.js",
      "$(MODULES_DIR)/core/agent.xsb: $(TMP_DIR)/tsc/core/agent/repo/device/core/agent.js",
    ].join("\n");
    const inputs = projectModuleInputs(makefile, { TMP_DIR: "/tmp/b" }, "/repo");
    expect([...inputs]).toEqual([
      ["esp32/native/espota", "/repo/device/esp32/native/espota.js"],
      ["core/agent", "/tmp/b/tsc/core/agent/repo/device/core/agent.js"],
    ]);
  });
});
