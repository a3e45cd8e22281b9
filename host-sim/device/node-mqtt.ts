// MqttPort on mqtt.js. Login is the device id and its API key (the broker's ACL keys on them). With pinned CAs,
// mqtts only, verified against those CAs alone (pinned-tls.ts), so the key never crosses in clear.
import mqtt from "mqtt";
import type { MqttPort } from "../../device/core/ports";
import { checkPinnedCas, pinnedTlsOptions, plainUrlRefusal, tlsRefusal, type PinnedTls, type TlsRefusedError } from "./pinned-tls";

export class NodeMqttPort implements MqttPort {
  private client: mqtt.MqttClient | null = null;
  private handlers: ((topic: string, payload: string) => void)[] = [];

  /** The last TLS refusal of a connection attempt (mqtt.js keeps retrying; connect() reports it). */
  private refused: TlsRefusedError | null = null;

  constructor(private readonly url: string, private readonly username: string, private readonly password: string, private readonly tls: PinnedTls | null = null) {
    if (tls) checkPinnedCas(tls.cas);
  }

  async connect(subscriptions: string[]): Promise<void> {
    const plain = plainUrlRefusal(this.url, this.tls);
    if (plain) throw plain;
    if (!this.client) {
      this.client = mqtt.connect(this.url, {
        ...(this.tls ? pinnedTlsOptions(this.tls) : {}),
        username: this.username,
        password: this.password,
        clientId: `${this.username}-${Math.random().toString(16).slice(2, 8)}`,
        reconnectPeriod: 1000,
        connectTimeout: 5000,
      });
      this.client.on("message", (topic, payload) => {
        for (const h of this.handlers) h(topic, payload.toString("utf8"));
      });
      // mqtt.js reconnects on its own and connected() tells the agent; a TLS refusal is kept to be reported.
      this.client.on("error", (e) => (this.refused = tlsRefusal(e, this.url) ?? this.refused));
      this.client.on("connect", () => (this.refused = null));
    }
    const c = this.client;
    if (!c.connected) {
      await new Promise<void>((resolve, reject) => {
        const done = (e?: Error) => (clearTimeout(timer), c.off("connect", ok), c.off("error", failed), e ? reject(e) : resolve());
        const ok = () => done();
        const failed = (e: Error) => {
          const refusal = tlsRefusal(e, this.url);
          if (refusal) done(refusal);
          // A CONNACK refusal (mqtt.js: a numeric code): a bad login, which retrying will not mend.
          else if (typeof (e as { code?: unknown }).code === "number") done(new Error(`MQTT login refused: ${e.message}`));
        };
        const timer = setTimeout(() => done(this.refused ?? new Error("MQTT connect timed out")), 5000);
        c.once("connect", ok);
        c.on("error", failed);
      });
    }
    if (subscriptions.length > 0) await c.subscribeAsync(subscriptions, { qos: 1 });
  }

  connected(): boolean {
    return this.client?.connected ?? false;
  }

  async publish(topic: string, payload: string): Promise<void> {
    if (!this.client) throw new Error("MQTT not connected");
    await this.client.publishAsync(topic, payload, { qos: 1 });
  }

  onMessage(handler: (topic: string, payload: string) => void) {
    this.handlers.push(handler);
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    this.handlers = [];
    if (c) await c.endAsync(true);
  }
}
