// MqttPort on mqtt.js. Login is the device id and its API key (the broker's ACL keys on them).
import mqtt from "mqtt";
import type { MqttPort } from "../../device/core/ports";

export class NodeMqttPort implements MqttPort {
  private client: mqtt.MqttClient | null = null;
  private handlers: ((topic: string, payload: string) => void)[] = [];

  constructor(private readonly url: string, private readonly username: string, private readonly password: string) {}

  async connect(subscriptions: string[]): Promise<void> {
    if (!this.client) {
      this.client = mqtt.connect(this.url, {
        username: this.username,
        password: this.password,
        clientId: `${this.username}-${Math.random().toString(16).slice(2, 8)}`,
        reconnectPeriod: 1000,
        connectTimeout: 5000,
      });
      this.client.on("message", (topic, payload) => {
        for (const h of this.handlers) h(topic, payload.toString("utf8"));
      });
      this.client.on("error", () => {}); // reconnects on its own; connected() tells the agent
    }
    const c = this.client;
    if (!c.connected) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("MQTT connect timed out")), 5000);
        c.once("connect", () => (clearTimeout(timer), resolve()));
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
