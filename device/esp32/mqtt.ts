// MqttPort on Moddable's ECMA-419 MQTT 3.1.1 client (embedded:network/mqtt/client): over the pinned-CA TLS socket
// the HTTP port uses (mqtts://) or, with no CA pinned, plain TCP (mqtt://). QoS 0 as before: the agent treats MQTT
// as a wake-up hint and falls back to polling, so a lost message costs at most one poll interval.
import MQTTClient from "embedded:network/mqtt/client";
import TCP from "embedded:io/socket/tcp";
import Timer from "timer";
import type { MqttPort } from "../core/ports";
import { NetResolver } from "./net-resolver";
import { connectionFailure, PinnedCas, tlsSocketOptions, type TlsFault } from "./tls-socket";
import { parseUrl } from "./url";

// The client as examples/io/tcp/mqttclient/mqttclient.js is: the SDK's typing of it
// (typings/embedded_network/mqtt/client.d.ts, the one mcconfig's tsc sees) passes onControl an opcode before the
// message (the client passes only the message, mqttclient.js:727) and lets write() take no null data (control packets).
interface ControlMessage {
  operation: number;
  /** SUBACK: the granted QoS of each topic. */
  payload?: number[];
}
interface ConnectionOptions {
  host: string;
  port: number;
  id: string;
  user?: string;
  password?: string;
  clean: boolean;
  /** ms; 0 sends no PINGREQ. */
  keepalive: number;
  dns: { io: unknown };
  socket: Record<string, unknown>;
  onControl: (message: ControlMessage) => void;
  /** `topic` and `byteLength` on a message's first fragment; `more` while fragments follow. */
  onReadable: (count: number, info: { more: boolean; topic?: string; byteLength?: number }) => void;
  /** No argument: a socket error, a refused CONNACK, a protocol error or a missed PINGRESP; the client has closed. */
  onError: () => void;
}
interface Connection {
  read(count: number): ArrayBuffer | undefined;
  /** Throws "overflow" when the packet does not fit what the socket takes now. */
  write(data: ArrayBuffer | null, options: { operation?: number; topic?: string; QoS?: number; items?: { topic: string; QoS: number }[] }): number;
  close(): void;
}
const Client = MQTTClient as unknown as new (options: ConnectionOptions) => Connection;

/** Messages above this are read and dropped unassembled: the agent's notifications are at most 1 KiB. */
const MESSAGE_MAX_BYTES = 4096;
/** SUBACK's code for a refused subscription. */
const SUBSCRIPTION_REFUSED = 0x80;

export interface EspMqttOptions {
  /** mqtt://host[:port], or mqtts://host[:port] when CAs are pinned. */
  url: string;
  clientId: string;
  user?: string;
  password?: string;
  /** Keep-alive in ms. Default 60 s. */
  keepAliveMs?: number;
  /** CONNACK and SUBACK deadline in ms. Default 15 s. */
  connectTimeoutMs?: number;
  /** The pinned CAs (DER resources, as for HTTPS): then only mqtts:// is used, and mqtt:// is refused
   * (TLS_REQUIRED), so the API key (the MQTT password) never crosses in clear. */
  caResources?: string[];
}

interface Inbound {
  topic: string;
  byteLength: number;
  chunks: ArrayBuffer[];
}

const asError = (e: unknown) => (e instanceof Error ? e : new Error(String(e)));

export class EspMqttPort implements MqttPort {
  #options: EspMqttOptions;
  #cas: PinnedCas | null;
  #client: Connection | undefined;
  #ready = false;
  #inbound: Inbound | undefined;
  #handler: ((topic: string, payload: string) => void) | undefined;

  constructor(options: EspMqttOptions) {
    this.#options = options;
    const cas = options.caResources ?? [];
    this.#cas = cas.length > 0 ? new PinnedCas(cas) : null;
  }

  connect(subscriptions: string[]): Promise<void> {
    this.#drop();
    const o = this.#options;
    const cas = this.#cas;
    const u = parseUrl(o.url);
    if (cas && u.scheme !== "mqtts") return Promise.reject(new Error(`TLS_REQUIRED: refused ${u.scheme}:// URL: this device only talks TLS to its pinned CAs (${u.host})`));
    if (!cas && u.scheme !== "mqtt") return Promise.reject(new Error(`mqtts needs a pinned CA (config caCerts): ${o.url}`));
    return new Promise((resolve, reject) => {
      let settled = false;
      const fault: TlsFault = {};
      const settle = (error?: Error) => {
        if (settled) return;
        settled = true;
        Timer.clear(timer);
        if (error) reject(error);
        else {
          this.#ready = true;
          resolve();
        }
      };
      const fail = (e: Error) => {
        if (this.#client !== client) return;
        this.#drop();
        settle(e);
      };
      const timer = Timer.set(() => fail(new Error("MQTT connect timeout")), o.connectTimeoutMs ?? 15_000);
      const client: Connection = new Client({
        host: u.host,
        port: u.port,
        id: o.clientId,
        user: o.user,
        password: o.password,
        clean: true,
        keepalive: o.keepAliveMs ?? 60_000,
        dns: { io: NetResolver },
        socket: cas ? tlsSocketOptions(cas, fault) : { io: TCP },
        // Nothing may throw out of these: the exception would reach the socket's native callback.
        onControl: (message) => {
          try {
            if (message.operation === MQTTClient.CONNACK) {
              if (subscriptions.length === 0) settle();
              else client.write(null, { operation: MQTTClient.SUBSCRIBE, items: subscriptions.map((topic) => ({ topic, QoS: 0 })) });
            } else if (message.operation === MQTTClient.SUBACK && !settled) {
              if (message.payload?.includes(SUBSCRIPTION_REFUSED)) fail(new Error("MQTT subscription refused"));
              else settle();
            }
          } catch (e) {
            fail(asError(e));
          }
        },
        onReadable: (count, info) => {
          try {
            this.#receive(client, count, info.topic, info.byteLength, info.more);
          } catch (e) {
            fail(asError(e));
          }
        },
        onError: () => {
          if (!settled) cas?.failed(); // the next connection tries the other pinned CA
          const refusal = connectionFailure(fault, u.host);
          fail(new Error(refusal ? `${refusal.code}: ${refusal.detail}` : `MQTT connection failed or closed (${u.host})`));
        },
      });
      this.#client = client;
    });
  }
  connected(): boolean {
    return this.#ready && this.#client !== undefined;
  }
  publish(topic: string, payload: string): Promise<void> {
    try {
      if (!this.#client || !this.#ready) throw new Error("MQTT not connected");
      this.#client.write(ArrayBuffer.fromString(payload), { topic, QoS: 0 });
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(asError(e));
    }
  }
  onMessage(handler: (topic: string, payload: string) => void): void {
    this.#handler = handler;
  }
  close(): Promise<void> {
    this.#drop();
    return Promise.resolve();
  }

  /** A message arrives in fragments; the first names its topic and whole length. Every byte is read, or the client
   * stops parsing. */
  #receive(client: Connection, count: number, topic: string | undefined, byteLength: number | undefined, more: boolean): void {
    if (topic !== undefined) this.#inbound = { topic, byteLength: byteLength ?? 0, chunks: [] };
    const inbound = this.#inbound;
    const piece = client.read(count);
    if (!inbound || inbound.byteLength > MESSAGE_MAX_BYTES) {
      if (!more) this.#inbound = undefined;
      return;
    }
    if (piece) inbound.chunks.push(piece);
    if (more) return;
    this.#inbound = undefined;
    const [first, ...rest] = inbound.chunks;
    const body = first ? (rest.length ? first.concat(...rest) : first) : new ArrayBuffer(0);
    this.#handler?.(inbound.topic, String.fromArrayBuffer(body));
  }
  #drop(): void {
    const client = this.#client;
    this.#client = undefined;
    this.#ready = false;
    this.#inbound = undefined;
    try {
      client?.close();
    } catch {
      // already closed
    }
  }
}
