// Keeps the Wi-Fi station joined: Moddable's setup/network joins once at boot and never again, so after an access
// point reboot or a range drop the board would stay offline until power-cycled. On each loss of the link this
// schedules a rejoin after a capped exponential delay with jitter (a fleet behind one access point must not
// retry in lock step), and starts over from the first delay once an address is back. Platform-free: wifi.ts
// binds it to Moddable's Wi-Fi; tests drive it directly.

/** ECMA-419 Wi-Fi `connection` levels (modules/io/wifi/esp32/wifi-esp32.c xs_wifi419_connection_get). */
export const WIFI_DISCONNECTED = 200;
export const WIFI_CONNECTING = 300;
export const WIFI_GOT_IP = 500;

export interface BackoffOptions {
  /** Delay before the first rejoin. Default 1 s. */
  firstMs?: number;
  /** Largest delay. Default 60 s. */
  capMs?: number;
}

/** Delay before rejoin number `attempt` (0-based): min(cap, first·2^attempt), of which a random half is jitter. */
export function rejoinDelay(attempt: number, random: () => number, options: BackoffOptions = {}): number {
  const first = options.firstMs ?? 1_000;
  const cap = options.capMs ?? 60_000;
  const ceiling = Math.min(cap, first * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export interface WifiReconnectorOptions extends BackoffOptions {
  /** Starts joining the configured network (WiFi.connect); may throw (e.g. "already connecting"). */
  join(): void;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  random(): number;
  log?(message: string): void;
}

export class WifiReconnector {
  #options: WifiReconnectorOptions;
  #timer: unknown = undefined;
  #attempt = 0;
  #connection = WIFI_DISCONNECTED;

  constructor(options: WifiReconnectorOptions) {
    this.#options = options;
  }

  /** Rejoins since the link was last up. */
  get attempts(): number {
    return this.#attempt;
  }

  get rejoinPending(): boolean {
    return this.#timer !== undefined;
  }

  /** The station's `connection` level changed (onChanged). */
  changed(connection: number): void {
    this.#connection = connection;
    if (connection >= WIFI_GOT_IP) {
      this.#cancel();
      if (this.#attempt > 0) this.#options.log?.(`Wi-Fi back after ${this.#attempt} rejoin(s)`);
      this.#attempt = 0;
    } else if (connection <= WIFI_DISCONNECTED && this.#timer === undefined) this.#schedule();
  }

  stop(): void {
    this.#cancel();
  }

  #schedule(): void {
    const ms = rejoinDelay(this.#attempt, this.#options.random, this.#options);
    this.#options.log?.(`Wi-Fi down: rejoin ${this.#attempt + 1} in ${ms} ms`);
    this.#timer = this.#options.setTimer(() => this.#rejoin(), ms);
  }

  #rejoin(): void {
    this.#timer = undefined;
    if (this.#connection > WIFI_DISCONNECTED) return; // came back (or is joining) by itself meanwhile
    this.#attempt++;
    try {
      this.#options.join();
    } catch (e) {
      this.#options.log?.(`Wi-Fi rejoin refused: ${e instanceof Error ? e.message : String(e)}`);
    }
    // A join that fails reports "disconnected" again; one that never reports anything must not end the retries.
    this.#schedule();
  }

  #cancel(): void {
    if (this.#timer !== undefined) this.#options.clearTimer(this.#timer);
    this.#timer = undefined;
  }
}
