// Generates what the ESP32 build needs from npm before `mcconfig` runs:
//   build/esp32/tweetnacl.js   tweetnacl (CommonJS/UMD) as an ES module XS can load
//   build/esp32/tweetnacl.d.ts its types, so mcconfig's tsc sees the same API as `npm run typecheck`
// `require` is defined away: tweetnacl would otherwise probe require("crypto") for a PRNG at load time,
// which throws under XS. Signature verification needs no randomness.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const outDir = join(root, "build", "esp32");

export async function prebuild() {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [join(root, "node_modules/tweetnacl/nacl-fast.js")],
    bundle: true,
    format: "esm",
    platform: "neutral",
    define: { require: "undefined" },
    outfile: join(outDir, "tweetnacl.js"),
    logLevel: "warning",
  });
  copyFileSync(join(root, "node_modules/tweetnacl/nacl.d.ts"), join(outDir, "tweetnacl.d.ts"));
  return outDir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(`esp32 prebuild: ${await prebuild()}`);
}
