// Generates what the ESP32 build needs from npm before `mcconfig` runs:
//   build/esp32/tweetnacl.js   tweetnacl (CommonJS/UMD) as an ES module XS can load
//   build/esp32/tweetnacl.d.ts its types, so mcconfig's tsc sees the same API as `npm run typecheck`
//   build/esp32/ca/ota-ca.der  the CA the device pins (DER, as Moddable's TLS wants it): $OTA_CA, a PEM file, by
//                              default .ota-data/tls/ca.pem, the CA ota-server uses on that data dir (generated here
//                              if it does not exist yet, as the server would); ca/ota-ca-next.der from $OTA_CA_NEXT
//                              while a CA is rotated (config caCerts="ota-ca.der,ota-ca-next.der")
// `require` is defined away: tweetnacl would otherwise probe require("crypto") for a PRNG at load time,
// which throws under XS. Signature verification needs no randomness.
import { build } from "esbuild";
import { X509Certificate } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const outDir = join(root, "build", "esp32");
export const caDir = join(outDir, "ca");

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
  mkdirSync(caDir, { recursive: true });
  pinnedCa(process.env.OTA_CA ?? (await serverCa()), "ota-ca.der", true);
  pinnedCa(process.env.OTA_CA_NEXT, "ota-ca-next.der", process.env.OTA_CA_NEXT !== undefined);
  return outDir;
}

/** .ota-data/tls/ca.pem, created with the server's own generator (node-forge) when the server has not run yet. */
async function serverCa() {
  const dir = join(root, ".ota-data", "tls");
  if (!existsSync(join(dir, "ca.pem"))) {
    const { tsImport } = await import("tsx/esm/api");
    const tls = await tsImport("../server-stub/tls.ts", import.meta.url);
    tls.loadOrCreateTls(dir, tls.defaultHosts());
    console.log(`esp32 prebuild: generated the server's CA in ${dir} (ota-server started on ./.ota-data uses it)`);
  }
  return join(dir, "ca.pem");
}

/** Converts a PEM CA certificate to the DER resource `name`; a stale one is removed when there is none. */
function pinnedCa(pemFile, name, required) {
  const out = join(caDir, name);
  if (!pemFile || !existsSync(pemFile)) {
    if (required) throw new Error(`${pemFile}: no such CA certificate`);
    rmSync(out, { force: true });
    return;
  }
  writeFileSync(out, new X509Certificate(readFileSync(pemFile)).raw);
  console.log(`esp32 prebuild: pinned CA ${name} from ${pemFile}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(`esp32 prebuild: ${await prebuild()}`);
}
