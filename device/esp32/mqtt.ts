// MqttPort on Moddable's `mqtt` client (modules/network/mqtt): MQTT 3.1.1, QoS 0, lwIP DNS. The agent
// treats MQTT as a wake-up hint and falls back to polling, so QoS 0 loses nothing it relies on.
import Client from "mqtt";
import Timer from "timer";
import type { MqttPort } from "../core/ports";
import { parseUrl } from "./url";

export interface EspMqttOptions {
  /** mqtt://host[:port] */
  url: string;
  clientId: string;
  user?: string;
  password?: string;
  /** Keep-alive in ms. Default 60 s. */
  keepAliveMs?: number;
  /** CONNACK deadline in ms. Default 15 s. */
  connectTimeoutMs?: number;
  /** CAs are pinned: a plain mqtt:// URL is refused (TLS_REQUIRED), so the API key (the MQTT password) never
   * crosses in clear. MQTTS is not built yet on the ESP32 (Moddable's `mqtt` module takes only the older
   * SecureSocket, whose TLS session module clashes with the ECMA-419 one the HTTPS client uses): such a device
   * polls over HTTPS. */
  tlsRequired?: boolean;
}

export class EspMqttPort implements MqttPort {
  #options: EspMqttOptions;
  #client: Client | undefined;
  #ready = false;
  #handler: ((topic: string, payload: string) => void) | undefined;

  constructor(options: EspMqttOptions) {
    this.#options = options;
  }

  connect(subscriptions: string[]): Promise<void> {
    this.#drop();
    const o = this.#options;
    const u = parseUrl(o.url);
    if (o.tlsRequired) return Promise.reject(new Error(`TLS_REQUIRED: MQTT over TLS is not built on the ESP32 yet and ${u.scheme}:// would send the API key in clear; polling over HTTPS (${u.host})`));
    if (u.scheme !== "mqtt") return Promise.reject(new Error(`only mqtt:// is supported on the ESP32 build: ${o.url}`));
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = Timer.set(() => fail(new Error("MQTT connect timeout")), o.connectTimeoutMs ?? 15_000);
      const fail = (e: Error) => {
        this.#drop();
        if (!settled) {
          settled = true;
          Timer.clear(timer);
          reject(e);
        }
      };
      const client = new Client({
        host: u.host,
        port: u.port,
        id: o.clientId,
        user: o.user,
        password: o.password,
        timeout: o.keepAliveMs ?? 60_000,
      });
      this.#client = client;
      client.onReady = () => {
        try {
          for (const topic of subscriptions) client.subscribe(topic);
        } catch (e) {
          fail(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        this.#ready = true;
        settled = true;
        Timer.clear(timer);
        resolve();
      };
      client.onMessage = (topic, body) => {
        const payload = typeof body === "string" ? body : String.fromArrayBuffer(body);
        this.#handler?.(topic, payload);
      };
      client.onClose = () => {
        if (this.#client === client) fail(new Error("MQTT connection closed"));
      };
    });
  }
  connected(): boolean {
    return this.#ready && this.#client !== undefined;
  }
  publish(topic: string, payload: string): Promise<void> {
    try {
      if (!this.#client || !this.#ready) throw new Error("MQTT not connected");
      this.#client.publish(topic, ArrayBuffer.fromString(payload));
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }
  onMessage(handler: (topic: string, payload: string) => void): void {
    this.#handler = handler;
  }
  close(): Promise<void> {
    this.#drop();
    return Promise.resolve();
  }
  #drop(): void {
    const client = this.#client;
    this.#client = undefined;
    this.#ready = false;
    try {
      client?.close();
    } catch {
      // already closed
    }
  }
}
