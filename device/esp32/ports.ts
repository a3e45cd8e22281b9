// Assembles the ESP32 Ports. Storage is the same JournalStore the simulator runs, over the `agent` partition.
import type { LogLevel, Ports } from "../core/ports";
import { JournalStore } from "../core/journal-store";
import { EspClock } from "./clock";
import { EspHashPort } from "./hash";
import { EspHealthPort } from "./health";
import { EspHttpPort, type EspTlsOptions } from "./http";
import { EspLog } from "./log";
import { EspMqttPort, type EspMqttOptions } from "./mqtt";
import { EspOtaPort } from "./ota";
import { EspRawFlash } from "./raw-flash";
import { EspRestart } from "./restart";
import { ed25519Native } from "./verify-ed25519";
import { p256Native } from "./verify-p256";
import TextEncoder from "text/encoder";

export interface EspPortsOptions {
  /** Data partition of the agent's journal (partitions.csv). Default "agent". */
  journalPartition?: string;
  /** Without it the agent polls over HTTP only. */
  mqtt?: EspMqttOptions;
  /** The pinned CAs: https and mqtts only. */
  tls?: EspTlsOptions;
  logLevel?: LogLevel;
}

const encoder = new TextEncoder();

export function createEspPorts(options: EspPortsOptions = {}): Ports {
  const log = new EspLog({ level: options.logLevel });
  const ports: Ports = {
    ota: new EspOtaPort(),
    http: new EspHttpPort(options.tls),
    hash: new EspHashPort(),
    // Both manifest signature algorithms, native: AgentConfig.signatureAlgs picks which a device accepts.
    verifiers: [ed25519Native, p256Native],
    // Moddable's native UTF-8 encoder: each journal commit encodes a whole record.
    storage: new JournalStore(new EspRawFlash({ partition: options.journalPartition ?? "agent" }), undefined, encoder),
    clock: new EspClock(),
    restart: new EspRestart(log),
    log,
    health: new EspHealthPort(),
  };
  if (options.mqtt) ports.mqtt = new EspMqttPort({ ...options.mqtt, caResources: options.tls?.caResources });
  return ports;
}
