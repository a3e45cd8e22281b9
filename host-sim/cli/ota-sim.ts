// ota-sim: run simulated ESP32 devices (the real agent over a simulated flash) against an OTA server.
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { TrustedKey } from "../../device/core/config";
import { base64Decode } from "../../device/protocol/base64";
import { createDeviceFlash, programPartition } from "../device-flash";
import { SimDevice } from "../device/sim-device";
import { buildAppImage } from "../esp/app-image";
import { findByName } from "../esp/partition-table";
import { loadPartitionTable } from "../esp/esp-ota";
import { NorFlash } from "../flash/nor-flash";
import { writeRunning } from "../running-slot";

const USAGE = `usage:
  ota-sim device --id ID --flash FLASH.bin --server URL --api-key KEY [--mqtt URL] [--key PUBKEY ...]
                 [--model MODEL] [--hardware-version V] [--once] [--verbose]
    Boots the flash (created with a v1.0.0 image if missing) and runs the update agent.
    --key      a trusted server public key, base64 as GET /api/v1/keys returns it (repeatable);
               without it the device trusts the keys in FLASH.bin.keys.json (its "baked-in" config)
    --once     exit after one check-and-update cycle (reboot, confirm or rollback included):
               exit code 0 when the device ends on a verified image`;

type Out = (line: string) => void;

export async function main(argv: string[], out: Out = (l) => console.log(l), err: Out = (l) => console.error(l)): Promise<number> {
  try {
    const [cmd, ...rest] = argv;
    if (cmd === "device") return await device(rest, out);
    if (cmd === undefined || cmd === "help" || cmd === "--help") {
      out(USAGE);
      return 0;
    }
    err(`ota-sim: unknown command ${JSON.stringify(cmd)}`);
    err(USAGE);
    return 2;
  } catch (e) {
    err(`ota-sim: ${(e as Error).message}`);
    return 1;
  }
}

async function device(args: string[], out: Out): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      id: { type: "string" },
      flash: { type: "string" },
      server: { type: "string" },
      "api-key": { type: "string" },
      mqtt: { type: "string" },
      key: { type: "string", multiple: true },
      model: { type: "string" },
      "hardware-version": { type: "string" },
      once: { type: "boolean" },
      verbose: { type: "boolean" },
    },
  });
  for (const required of ["id", "flash", "server", "api-key"] as const) {
    if (!values[required]) throw new Error(`--${required} is required`);
  }
  const flashPath = values.flash!;
  const trustedKeys = loadKeys(values.key ?? [], flashPath);
  const flash = existsSync(flashPath) ? NorFlash.open(flashPath) : factoryFlash(flashPath, out);
  const dev = new SimDevice({
    id: values.id!,
    flash,
    serverUrl: values.server!,
    apiKey: values["api-key"]!,
    trustedKeys,
    ...(values.mqtt ? { mqttUrl: values.mqtt } : {}),
    ...(values.model ? { model: values.model } : {}),
    ...(values["hardware-version"] ? { hardwareVersion: values["hardware-version"] } : {}),
    log: values.verbose ? out : (line) => (/ (warn|error) |\[boot/.test(line) ? out(line) : undefined),
  });
  if (values.once) {
    const r = await dev.runCycle();
    await dev.powerOff();
    writeRunning(flashPath, { running: r.slot, version: r.version, bootedAt: new Date().toISOString() });
    out(`${values.id}: ${r.bricked ? "BRICKED" : `running ${r.slot} v${r.version}`} after ${r.boots} boot(s); last check: ${JSON.stringify(r.outcome)}`);
    return r.bricked ? 1 : 0;
  }
  await dev.runForever();
  out(`${values.id}: running; Ctrl-C to stop`);
  await new Promise<void>((resolve) => process.once("SIGINT", resolve));
  await dev.stopForever();
  return 0;
}

function loadKeys(keys: string[], flashPath: string): TrustedKey[] {
  const baked = `${flashPath}.keys.json`;
  const list: TrustedKey[] = keys.length > 0 ? keys.map((publicKey) => ({ publicKey })) : existsSync(baked) ? (JSON.parse(readFileSync(baked, "utf8")) as TrustedKey[]) : [];
  if (list.length === 0) throw new Error(`no trusted keys: pass --key (from GET /api/v1/keys) or provide ${baked}`);
  for (const k of list) {
    if (base64Decode(k.publicKey).length !== 32) throw new Error(`--key ${k.publicKey.slice(0, 16)}… is not a base64 32-byte ed25519 public key`);
  }
  return list;
}

/** A new device from the factory: v1.0.0 in ota_0, otadata blank. */
function factoryFlash(path: string, out: Out): NorFlash {
  const flash = createDeviceFlash({ path });
  const ota0 = findByName(loadPartitionTable(flash), "ota_0")!;
  programPartition(flash, ota0, buildAppImage({ version: "1.0.0" }));
  out(`created ${path} with v1.0.0 in ota_0`);
  return flash;
}
