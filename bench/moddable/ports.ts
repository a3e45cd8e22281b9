// The bench's Ports: the ESP32 adapters themselves (HTTP, hash, clock, log, health, restart, OTA and the
// journal's raw flash), with only what lies beneath them swapped for Linux stand-ins (espota-lin.c, flash-lin.js,
// no-tls.js). No MQTT: the bench agent polls, as a board without a broker does.
import { JournalStore } from "../../device/core/journal-store";
import type { Ports } from "../../device/core/ports";
import { EspClock } from "../../device/esp32/clock";
import { EspHashPort } from "../../device/esp32/hash";
import { EspHealthPort } from "../../device/esp32/health";
import { EspHttpPort } from "../../device/esp32/http";
import { EspLog } from "../../device/esp32/log";
import { EspOtaPort } from "../../device/esp32/ota";
import { EspRawFlash } from "../../device/esp32/raw-flash";
import { EspRestart } from "../../device/esp32/restart";
import TextEncoder from "text/encoder";

const encoder = new TextEncoder();

export function createBenchPorts(logLevel: "debug" | "info" | "warn" | "error"): Ports {
  const log = new EspLog({ level: logLevel });
  return {
    ota: new EspOtaPort(),
    http: new EspHttpPort(),
    hash: new EspHashPort(),
    storage: new JournalStore(new EspRawFlash({ partition: "agent" }), undefined, encoder),
    clock: new EspClock(),
    restart: new EspRestart(log),
    log,
    health: new EspHealthPort(),
  };
}
