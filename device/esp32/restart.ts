// RestartPort: esp_restart() after the log line has had a moment to leave the serial port.
import EspOta from "./native/espota";
import Timer from "timer";
import type { LogPort, RestartPort } from "../core/ports";

export class EspRestart implements RestartPort {
  #log: LogPort;
  constructor(log: LogPort) {
    this.#log = log;
  }
  restart(reason: string): void {
    this.#log.log("warn", "restarting", { reason });
    Timer.delay(100);
    EspOta.restart();
  }
}
