// The bench app on Moddable's headless Linux runtime (npm run bench:moddable): the agent core, unmodified, on
// the ESP32 adapters. BENCH_MODE=idle boots, marks idle, checks once (no update offered) and ends;
// BENCH_MODE=update boots, marks idle, checks and installs (the restart ends the process: the harness starts it
// again), and the next boot confirms. host-lin.c prints the memory meters when the process ends.
import { Agent } from "../../device/core/agent";
import type { BootOutcome, CheckOutcome } from "../../device/core/agent";
import Host from "./host";
import { createBenchPorts } from "./ports";

function setting(name: string): string {
  const value = Host.env(name);
  if (value === undefined) throw new Error(`bench: ${name} is not set`);
  return value;
}

async function run(): Promise<void> {
  const mode = setting("BENCH_MODE");
  const ports = createBenchPorts(Host.env("BENCH_LOG") === "debug" ? "debug" : "warn");
  const agent = new Agent(
    {
      deviceId: setting("BENCH_DEVICE_ID"),
      deviceModel: "ESP32-DEVKIT",
      hardwareVersion: "1.0",
      serverUrl: setting("BENCH_SERVER_URL"),
      apiKey: setting("BENCH_API_KEY"),
      trustedKeys: [{ publicKey: setting("BENCH_TRUSTED_KEY") }],
      progressMinIntervalMs: 0,
    },
    ports,
  );
  const boot: BootOutcome = await agent.start({ poll: false, mqtt: false });
  if (boot === "confirmed") Host.finish(0, "confirmed");
  if (boot !== "normal") Host.finish(1, `boot: ${boot}`);
  Host.markIdle();
  const outcome: CheckOutcome = await agent.checkNow();
  if (mode === "idle" && outcome.result === "none") Host.finish(0, "idle");
  // An installed update ends in the restart (the process exits there); anything else is a failed run.
  Host.finish(1, `check: ${outcome.result}${"message" in outcome ? " " + outcome.message : ""}`);
}

run().catch((e: unknown) => Host.finish(1, `threw: ${e instanceof Error ? e.message : String(e)}`));
