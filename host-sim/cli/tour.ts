// `npm start` until the fleet demo exists: the README's simulator tour, run step by step with real commands.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

type Out = (line: string) => void;

/** The same commands the README lists, relative to a working directory. */
export const TOUR: { say: string; args: string[]; expectFail?: boolean }[] = [
  { say: "Build two app images (ESP32 image format, app descriptor at 0x20, appended SHA-256)", args: ["image", "build", "v1.0.0.bin", "--version", "1.0.0"] },
  { say: "", args: ["image", "build", "v1.1.0.bin", "--version", "1.1.0", "--size", "256K"] },
  { say: "Inspect one as the bootloader would verify it", args: ["image", "info", "v1.1.0.bin"] },
  { say: "Create a 4 MB flash from partitions.csv and factory-program v1.0.0 into ota_0", args: ["create", "flash.bin", "--image", "v1.0.0.bin"] },
  { say: "First boot: blank otadata, no factory app → ota_0, and the bootloader writes seq 1 VALID", args: ["boot", "flash.bin"] },
  { say: "Install v1.1.0 into the next slot: otadata gets seq 2 NEW", args: ["install", "flash.bin", "v1.1.0.bin"] },
  { say: "Boot it: NEW → PENDING_VERIFY", args: ["boot", "flash.bin"] },
  { say: "The app never confirms (say it hung): the next boot marks it ABORTED and falls back to v1.0.0", args: ["boot", "flash.bin"] },
  { say: "Install again, boot, and this time confirm it", args: ["install", "flash.bin", "v1.1.0.bin"] },
  { say: "", args: ["boot", "flash.bin"] },
  { say: "", args: ["confirm", "flash.bin"] },
  { say: "Bad input gets one clear line and a non-zero exit (here: a text file is not an app image)", args: ["image", "info", "README.md"], expectFail: true },
  { say: "Where things stand", args: ["info", "flash.bin"] },
];

export async function runTour(dir: string | undefined, out: Out) {
  const { main } = await import("./ota-flash");
  const cwd = dir ?? mkdtempSync(join(tmpdir(), "ota-tour-"));
  out(`Simulator tour in ${cwd} (each step is an ota-flash command you can run yourself)\n`);
  const abs = (a: string) => (/\.bin$/.test(a) ? join(cwd, a) : a);
  for (const step of TOUR) {
    if (step.say) out(`# ${step.say}`);
    out(`$ ota-flash ${step.args.join(" ")}`);
    const errors: string[] = [];
    const code = await main(step.args.map(abs), (l) => out(l), (l) => (errors.push(l), out(l)));
    if ((code !== 0) !== Boolean(step.expectFail)) throw new Error(`tour step failed: ota-flash ${step.args.join(" ")}: ${errors.join(" ")}`);
    out("");
  }
  out("Tour complete.");
}
