// Runs inside the XS worker: the agent core over the REAL ESP32 adapters (device/esp32/ports.ts and everything
// it assembles: http.ts, ota.ts, hash.ts, clock.ts, restart.ts, raw-flash.ts, health.ts, log.ts), with the
// Moddable modules they import replaced at bundle time by the fakes in moddable-fakes/ (esp32-bundle.ts).
// MQTT is left out (another rewrite is under way): the agent polls.
import "./moddable-fakes/xs-extensions";
import { Agent } from "../../device/core/agent";
import { createEspPorts } from "../../device/esp32/ports";
import type { Esp32WireConfig } from "./moddable-fakes/calls";
import { FAKE_PUSH } from "./moddable-fakes/calls";
import { hostCall, hostCallAsync, onPush } from "./moddable-fakes/host";
import type { ProbeArgs } from "./http-probe";
import { httpProbe } from "./http-probe";

let agent: Agent | null = null;

function run(what: string, args: unknown): Promise<unknown> {
  switch (what) {
    case "start": {
      const { options, config } = args as { options: { poll?: boolean }; config: Esp32WireConfig };
      // The application's self-test checks (device/main.ts) run on the host, which decides what the firmware does.
      const selfTests = Object.fromEntries(config.selfTests.map((name) => [name, () => hostCallAsync("hook.run", name, []) as Promise<boolean>]));
      agent = new Agent({ ...config, selfTests }, createEspPorts({ logLevel: "debug" }));
      return agent.start({ ...options, mqtt: false });
    }
    case "http-probe":
      return httpProbe(args as ProbeArgs);
    case "check":
      return agent ? agent.checkNow() : Promise.reject(new Error("the agent has not started"));
    default:
      return Promise.reject(new Error(`unknown run ${what}`));
  }
}

onPush(FAKE_PUSH.run, (r) => {
  const ticket = r.u32();
  const what = r.str();
  const args: unknown = JSON.parse(r.str());
  run(what, args).then(
    (v) => hostCall("run.done", ticket, true, JSON.stringify(v ?? null)),
    (e: unknown) => hostCall("run.done", ticket, false, e instanceof Error ? `${e.name}: ${e.message}` : String(e)),
  );
});
