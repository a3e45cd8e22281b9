// The XS bundle of esp32-entry.ts: the Moddable modules device/esp32 imports resolve to the fakes in
// moddable-fakes/ (each cites the Moddable source it stands for); a Moddable module without a fake resolves to
// one that throws when used, so an adapter reaching for it fails loudly instead of being silently skipped.
import type { Plugin } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { noNodeCrypto, xsBundle } from "./xs-bundle";

const here = dirname(fileURLToPath(import.meta.url));
const fakes = join(here, "moddable-fakes");

/** Import specifier (as device/esp32 writes it) → fake. */
export const MODDABLE_FAKES: Record<string, string> = {
  "embedded:network/http/client": "http-client.ts",
  "embedded:io/socket/tcp": "tcp.ts",
  "embedded:io/socket/tcp/tls": "tls.ts",
  "embedded:storage/flash": "flash.ts",
  timer: "timer.ts",
  crypt: "crypt.ts",
  "text/encoder": "text-encoder.ts",
  net: "net.ts",
  Resource: "resource.ts",
  "./native/espota": "espota.ts",
  "./native/ed25519": "ed25519.ts",
  "./native/p256": "p256.ts",
};

/** Moddable modules the adapters import but this run leaves out (MQTT: the agent polls). */
const UNFAKED = /^(mqtt|embedded:.*|mc\/config)$/;

const aliases: Plugin = {
  name: "moddable-fakes",
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const fake = MODDABLE_FAKES[args.path];
      if (fake && (!args.path.startsWith("./native/") || args.resolveDir.endsWith(join("device", "esp32")))) return { path: join(fakes, fake) };
      if (UNFAKED.test(args.path)) return { path: args.path, namespace: "unfaked" };
      return undefined;
    });
    b.onLoad({ filter: /.*/, namespace: "unfaked" }, (args) => ({
      contents: `const fail = () => { throw new Error("${args.path} is not faked in the XS adapter run"); };
        export default new Proxy(function () {}, { construct: fail, apply: fail, get: (_, k) => (k === "__esModule" ? undefined : fail()) });`,
    }));
  },
};

const bundles = new Map<string, Promise<string>>();

/** The agent core over the ESP32 adapters and the Moddable fakes, as one script (cached per process). With
 * `httpClient`, that file is embedded:network/http/client instead of the fake (Moddable's own httpclient.js, to
 * hold the fake to it). */
export function esp32Bundle(httpClient?: string): Promise<string> {
  const key = httpClient ?? "";
  const cached = bundles.get(key);
  if (cached) return cached;
  const clientPlugin: Plugin = {
    name: "http-client",
    setup: (b) => void b.onResolve({ filter: /^embedded:network\/http\/client$/ }, () => ({ path: httpClient! })),
  };
  const bundle = xsBundle(join(here, "esp32-entry.ts"), httpClient ? [clientPlugin, aliases, noNodeCrypto] : [aliases, noNodeCrypto]);
  bundles.set(key, bundle);
  return bundle;
}
