// How code is bundled for the XS runs (the agent's bundle and the ESP32 adapters' one): one script, strict
// throughout as Moddable compiles every module (strict mode is what turns a write to a frozen built-in's property
// into a TypeError instead of a silent no-op, see moddable-preload.js).
import { build, type Plugin } from "esbuild";

/** The bundle of `entry` with `plugins`, as the text xsnap evaluates. */
export async function xsBundle(entry: string, plugins: Plugin[]): Promise<string> {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    format: "iife",
    platform: "neutral",
    target: "es2022",
    mainFields: ["module", "main"],
    write: false,
    minify: false,
    banner: { js: '"use strict";' },
    plugins,
  });
  return out.outputFiles[0]!.text;
}

/** tweetnacl probes for Node's crypto only to seed its PRNG; signature checks need no randomness. */
export const noNodeCrypto: Plugin = {
  name: "no-node-crypto",
  setup(b) {
    b.onResolve({ filter: /^crypto$/ }, () => ({ path: "crypto", namespace: "empty" }));
    b.onLoad({ filter: /.*/, namespace: "empty" }, () => ({ contents: "module.exports = {};" }));
  },
};
