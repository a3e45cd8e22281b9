// Binds WifiReconnector to Moddable's ECMA-419 Wi-Fi (embedded:network/interface/wifi, modules/io/wifi: the one
// setup/network joins with at boot) and its timers.
import WiFi from "embedded:network/interface/wifi";
import Timer from "timer";
import { WifiReconnector } from "./wifi-reconnect";
import type { BackoffOptions } from "./wifi-reconnect";

export function keepWifiJoined(ssid: string, password: string, log: (message: string) => void, backoff: BackoffOptions = {}): WifiReconnector {
  let wifi: WiFi | undefined;
  const reconnector = new WifiReconnector({
    ...backoff,
    join: () => wifi?.connect(password ? { SSID: ssid, password } : { SSID: ssid }),
    setTimer: (fn, ms) => Timer.set(fn, ms),
    clearTimer: (t) => Timer.clear(t as Timer),
    random: Math.random,
    log,
  });
  // onChanged comes from the event loop, never from inside the constructor: `wifi` is set by then.
  const station = new WiFi({ onChanged: () => reconnector.changed(station.connection) });
  wifi = station;
  reconnector.changed(station.connection);
  return reconnector;
}
