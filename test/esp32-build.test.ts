// The ESP32 build inputs mcconfig reads: manifest.json (well formed, every local module/include/build path
// exists, every module the device code imports is provided) and sdkconfig.defaults (rollback, confirm by app).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error -- plain .mjs script without types
import { prebuild } from "../scripts/esp32-prebuild.mjs";

const root = join(import.meta.dirname, "..");
const manifestPath = join(root, "manifest.json");
type Modules = Record<string, string | string[]>;
interface Part {
  include?: string | string[];
  modules?: Modules;
  build?: Record<string, string>;
  config?: Record<string, unknown>;
  error?: string;
}
interface Manifest extends Part {
  platforms?: Record<string, Part>;
}

// Modules the SDK manifests included by ours provide (manifest_base/net, modules/io, io/flash, crypt/digest,
// data/text/encoder).
const SDK_MODULES = new Set(["timer", "net", "mc/config", "crypt", "text/encoder", "embedded:io/socket/tcp", "embedded:storage/flash", "Resource", "embedded:io/socket/tcp/tls", "embedded:network/interface/wifi"]); // from modules/files/resource and examples/io/tcp/tlssocket, which manifest.json includes
const EXTENSIONS = [".ts", ".d.ts", ".js", ".c"];

const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const local = (p: string) => join(dirname(manifestPath), p);

function parts(m: Manifest): Part[] {
  return [m, ...Object.values(m.platforms ?? {})];
}

/** mcconfig's rule: "./x/y" names x/y.ts, x/y.d.ts (types only), x/y.js or x/y.c; "./x/*" every such file in x. */
function moduleFiles(source: string): string[] {
  if (source.endsWith("/*")) {
    const dir = local(source.slice(0, -2));
    if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
    return readdirSync(dir)
      .filter((f) => EXTENSIONS.some((e) => f.endsWith(e)) && !f.endsWith(".d.ts"))
      .map((f) => join(dir, f));
  }
  return EXTENSIONS.map((e) => local(source) + e).filter((f) => existsSync(f));
}

/** Module name -> source file, for our own (./) modules. */
function moduleMap(m: Manifest): Map<string, string> {
  const names = new Map<string, string>();
  for (const part of parts(m))
    for (const [target, sources] of Object.entries(part.modules ?? {}))
      for (const source of list(sources)) {
        if (!source.startsWith("./")) continue;
        for (const file of moduleFiles(source)) {
          const base = file.replace(/(\.d)?\.(ts|js|c)$/, "");
          const name = target.endsWith("*") ? target.slice(0, -1) + base.slice(base.lastIndexOf("/") + 1) : target;
          if (!file.endsWith(".c") && !file.endsWith(".d.ts")) names.set(name, file);
        }
      }
  return names;
}

function imports(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/(?:^|\n)\s*(?:import|export)\s+([^;]*?)\s*from\s*["']([^"']+)["']/g))
    if (!/^type\s/.test(m[1])) out.push(m[2]);
  for (const m of source.matchAll(/(?:^|\n)\s*import\s*["']([^"']+)["']/g)) out.push(m[1]);
  return out;
}

let manifest: Manifest;
beforeAll(async () => {
  await prebuild(); // build/esp32/tweetnacl.{js,d.ts}, as a user runs it before mcconfig
  manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as Manifest;
});

describe("manifest.json", () => {
  it("is well formed: includes, modules, esp32 build settings, config, and an error for other platforms", () => {
    expect(list(manifest.include)).toContain("$(MODDABLE)/examples/manifest_base.json");
    expect(list(manifest.include)).toContain("$(MODDABLE)/examples/manifest_net.json");
    const esp32 = manifest.platforms?.esp32;
    expect(esp32?.modules?.main).toBe("./device/main");
    expect(esp32?.build?.PARTITIONS_FILE).toBe("./partitions.csv");
    expect(esp32?.build?.SDKCONFIGPATH).toBe("./sdkconfig");
    expect(manifest.platforms?.["..."]?.error).toMatch(/esp32/);
    for (const key of ["serverUrl", "deviceId", "apiKey", "mqttUrl", "trustedKeys"]) expect(manifest.config).toHaveProperty(key);
  });

  it("every local module, include and build path exists", () => {
    for (const part of parts(manifest)) {
      for (const inc of list(part.include)) if (inc.startsWith("./")) expect(existsSync(local(inc)), inc).toBe(true);
      for (const sources of Object.values(part.modules ?? {}))
        for (const source of list(sources)) if (source.startsWith("./")) expect(moduleFiles(source).length, source).toBeGreaterThan(0);
      for (const value of Object.values(part.build ?? {})) if (value.startsWith("./")) expect(existsSync(local(value)), value).toBe(true);
    }
    expect(existsSync(join(local(manifest.platforms!.esp32.build!.SDKCONFIGPATH), "sdkconfig.defaults"))).toBe(true);
  });

  it("the path check fails for a module file that does not exist", () => {
    expect(moduleFiles("./device/esp32/no-such-adapter")).toEqual([]);
    expect(moduleFiles("./device/no-such-dir/*")).toEqual([]);
  });

  it("provides every module the device code imports (relative ones resolved as XS does)", () => {
    const names = moduleMap(manifest);
    const sdkMapped = new Set(
      parts(manifest).flatMap((p) => Object.entries(p.modules ?? {}).filter(([, v]) => list(v).some((s) => s.startsWith("$(MODDABLE)"))).map(([k]) => k)),
    );
    expect(names.get("main")).toBe(join(root, "device/main.ts"));
    expect(names.has("core/agent")).toBe(true);
    for (const [name, file] of names) {
      if (!file.endsWith(".ts")) continue;
      for (const spec of imports(readFileSync(file, "utf8"))) {
        const target = spec.startsWith(".") ? posix.join(posix.dirname(name), spec) : spec;
        expect(names.has(target) || sdkMapped.has(target) || SDK_MODULES.has(target), `${relative(root, file)} imports "${spec}" (${target})`).toBe(true);
      }
    }
  });

  it("the prebuilt tweetnacl is an ES module that loads without require/self and verifies", async () => {
    const text = readFileSync(join(root, "build/esp32/tweetnacl.js"), "utf8");
    expect(text).not.toMatch(/\brequire\(/);
    const nacl = (await import(join(root, "build/esp32/tweetnacl.js"))).default as {
      sign: { detached: { verify(m: Uint8Array, s: Uint8Array, k: Uint8Array): boolean } };
    };
    expect(nacl.sign.detached.verify(new Uint8Array(1), new Uint8Array(64), new Uint8Array(32))).toBe(false);
  });
});

describe("sdkconfig/sdkconfig.defaults", () => {
  const text = readFileSync(join(root, "sdkconfig/sdkconfig.defaults"), "utf8");
  const options = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^(CONFIG_\w+)=(.*)$/.exec(line.trim());
    if (m) options.set(m[1], m[2]);
  }

  it("enables rollback (ESP-IDF v6.0: the app confirms) and bootloader image validation", () => {
    expect(options.get("CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE")).toBe("y");
    expect(options.get("CONFIG_BOOTLOADER_SKIP_VALIDATE_ALWAYS")).toBe("n");
    // Every symbol exists in v6.0: sdkconfig-idf.test.ts.
  });

  it("sets the app version from the config (not from git describe of the SDK)", () => {
    expect(options.get("CONFIG_APP_PROJECT_VER_FROM_CONFIG")).toBe("y");
    expect(options.get("CONFIG_APP_PROJECT_VER")).toMatch(/^"[0-9A-Za-z.+_-]{1,31}"$/);
  });

  it("uses the custom partition table on 4 MB flash", () => {
    expect(options.get("CONFIG_PARTITION_TABLE_CUSTOM")).toBe("y");
    expect(options.get("CONFIG_ESPTOOLPY_FLASHSIZE_4MB")).toBe("y");
  });

  it("leaves anti-rollback off (documented as an opt-in only)", () => {
    expect(options.has("CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK")).toBe(false);
    expect(text).toMatch(/#\s+CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK=y/);
    expect(text).toMatch(/eFuse/);
  });
});
