// The Wi-Fi rejoin logic of the ESP32 build (device/esp32/wifi-reconnect.ts), driven through the ECMA-419
// `connection` levels Moddable's Wi-Fi reports, on a manual timer.
import { describe, expect, it } from "vitest";
import { rejoinDelay, WIFI_CONNECTING, WIFI_DISCONNECTED, WIFI_GOT_IP, WifiReconnector } from "../device/esp32/wifi-reconnect";

function rig(random = () => 0.5) {
  const timers: { fn: () => void; ms: number; live: boolean }[] = [];
  const joins: number[] = [];
  const r = new WifiReconnector({
    join: () => joins.push(timers.length),
    setTimer: (fn, ms) => (timers.push({ fn, ms, live: true }), timers.length - 1),
    clearTimer: (h) => void (timers[h as number]!.live = false),
    random,
  });
  /** Fires the pending timer (there is at most one) and returns its delay. */
  const fire = () => {
    const t = timers.filter((x) => x.live);
    expect(t.length).toBe(1);
    t[0]!.live = false;
    t[0]!.fn();
    return t[0]!.ms;
  };
  return { r, timers, joins, fire, pending: () => timers.filter((x) => x.live).length };
}

describe("Wi-Fi rejoin with capped exponential backoff and jitter", () => {
  it("delays double from 1 s up to the 60 s cap, with a random upper half", () => {
    const low = [0, 1, 2, 3, 6, 7, 20].map((a) => rejoinDelay(a, () => 0));
    const high = [0, 1, 2, 3, 6, 7, 20].map((a) => rejoinDelay(a, () => 1));
    expect(low).toEqual([500, 1000, 2000, 4000, 30_000, 30_000, 30_000]);
    expect(high).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000, 60_000]);
    expect(rejoinDelay(2, () => 0.25, { firstMs: 100, capMs: 300 })).toBe(188); // 300/2 + 0.25·150
  });

  it("a drop schedules rejoins with growing delays until an address is back, then starts over", () => {
    const { r, joins, fire, pending } = rig();
    r.changed(WIFI_GOT_IP);
    expect(pending()).toBe(0);
    r.changed(WIFI_DISCONNECTED);
    expect(fire()).toBe(750);
    expect(joins.length).toBe(1);
    r.changed(WIFI_CONNECTING);
    r.changed(WIFI_DISCONNECTED); // that join failed: the next one is already scheduled, not a second one
    expect(fire()).toBe(1500);
    expect(fire()).toBe(3000);
    expect(r.attempts).toBe(3);
    r.changed(WIFI_GOT_IP);
    expect(pending()).toBe(0);
    expect(r.attempts).toBe(0);
    r.changed(WIFI_DISCONNECTED);
    expect(fire()).toBe(750); // from the first delay again
  });

  it("a join that throws (already connecting) or never answers does not end the retries", () => {
    const { r, fire, pending } = rig();
    const throwing = new WifiReconnector({
      join: () => {
        throw new Error("already connecting");
      },
      setTimer: (fn, ms) => setTimeoutLike(fn, ms),
      clearTimer: () => {},
      random: () => 0,
    });
    throwing.changed(WIFI_DISCONNECTED);
    expect(() => fired.shift()!()).not.toThrow();
    expect(throwing.rejoinPending).toBe(true);
    r.changed(WIFI_DISCONNECTED);
    fire();
    fire(); // no event at all after the first join: still retrying
    expect(pending()).toBe(1);
  });

  it("a link that comes back by itself before the timer cancels the rejoin", () => {
    const { r, joins, pending } = rig();
    r.changed(WIFI_DISCONNECTED);
    r.changed(WIFI_GOT_IP);
    expect(pending()).toBe(0);
    expect(joins).toEqual([]);
  });
});

const fired: (() => void)[] = [];
function setTimeoutLike(fn: () => void, _ms: number) {
  fired.push(fn);
  return fired.length;
}
