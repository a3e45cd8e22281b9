// The top-level folders form a layered graph: device/ needs nothing of ours outside itself; esp-image/ is the
// one module both the simulator and the server read app images with; host-sim/ and server-stub/ never import
// each other; cli/ is a REST client that reads the protocol and app images only. demo/, bench/ and test/ sit on
// top and may use them all.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..");

/** Which top-level folders each folder may import from (its own is always allowed). */
const ALLOWED: Record<string, string[]> = {
  device: [],
  "esp-image": [],
  "host-sim": ["device", "esp-image"],
  "server-stub": ["device", "esp-image"],
  cli: ["device", "esp-image"],
  release: ["device", "esp-image"],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.(ts|js|mjs)$/.test(name) && !name.endsWith(".d.ts") ? [p] : [];
  });
}

/** Relative import specifiers of a file: static imports, re-exports and dynamic import("…"). */
export function relativeImports(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)["'](\.{1,2}\/[^"']+)["']/g)) out.push(m[1]!);
  return out;
}

function violations(folder: string): string[] {
  const found: string[] = [];
  for (const file of sources(join(root, folder))) {
    for (const spec of relativeImports(readFileSync(file, "utf8"))) {
      const target = relative(root, resolve(dirname(file), spec)).split("/")[0]!;
      if (target !== folder && !ALLOWED[folder]!.includes(target)) found.push(`${relative(root, file)} imports ${spec} (${target}/)`);
    }
  }
  return found;
}

describe("import boundaries between top-level folders", () => {
  for (const folder of Object.keys(ALLOWED)) {
    it(`${folder}/ imports only ${ALLOWED[folder]!.join(", ") || "itself"}`, () => {
      expect(violations(folder)).toEqual([]);
    });
  }

  it("recognises the import forms it checks", () => {
    const text = `import a from "../x/a";\nexport * from '../y';\nconst m = await import("../z/m");\nimport "./side";`;
    expect(relativeImports(text)).toEqual(["../x/a", "../y", "../z/m", "./side"]);
  });
});
