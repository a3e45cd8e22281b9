// The ESP32 MqttPort (device/esp32/mqtt.ts) on Moddable's own ECMA-419 MQTT client (the SDK's mqttclient.js, loaded
// from $MODDABLE, not copied) over a TCP socket that behaves as Moddable's (helpers/ecma419-tcp.ts), against the OTA
// server's broker: log-in, subscription, the server's notifications, publishing, refusals. Moddable's TLS needs its
// native crypto and cannot run here: the TLS socket's error path is tested in esp32-tls-errors.test.ts.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { MqttPort } from "../device/core/ports";
import { otaCommandTopic, otaStatusTopic } from "../device/protocol";
import { Ecma419Tcp, moddableTime, moddableTimer, xsGlobals } from "./helpers/ecma419-tcp";
import { api, asAdmin, connectMqtt, eventually, nextMessage, registerDevice, startHarness, type Harness } from "./server/harness";

const clientFile = join(process.env.MODDABLE ?? "", "examples/io/tcp/mqttclient/mqttclient.js");
const haveSdk = process.env.MODDABLE !== undefined && existsSync(clientFile);
// Moddable's client is not on npm, so CI (npm registry and Debian only) cannot run this; say so once.
if (!haveSdk) console.log("esp32-mqtt: skipped: set MODDABLE to a Moddable SDK 8.2.3 checkout (README, Check the build without a board) to run the ESP32 MqttPort on Moddable's client");

vi.mock("timer", () => ({ default: moddableTimer }));
vi.mock("time", () => ({ default: moddableTime }));
vi.mock("embedded:io/socket/tcp", () => ({ default: Ecma419Tcp }));
vi.mock("embedded:network/mqtt/client", () => import(/* @vite-ignore */ clientFile));
// IP literals only: lwIP's resolver (the `net` module) answers them as they are.
vi.mock("../device/esp32/net-resolver", () => ({
  NetResolver: class {
    resolve({ host, onResolved }: { host: string; onResolved: (host: string, address: string) => void }) {
      setImmediate(() => onResolved(host, host));
    }
  },
}));
vi.mock("embedded:io/socket/tcp/tls", () => ({ default: class {} }));
vi.mock("Resource", () => ({ default: class {} }));

type EspMqttPort = MqttPort & { connected(): boolean };
type PortClass = new (options: { url: string; clientId: string; user?: string; password?: string; caResources?: string[]; connectTimeoutMs?: number }) => EspMqttPort;

async function portClass(): Promise<PortClass> {
  xsGlobals();
  const path = "../device/esp32/mqtt"; // computed: the host tsc cannot resolve its Moddable imports
  return ((await import(/* @vite-ignore */ path)) as { EspMqttPort: PortClass }).EspMqttPort;
}

describe.skipIf(!haveSdk)("EspMqttPort on Moddable's MQTT client, against the server's broker", () => {
  let h: Harness;
  let Port: PortClass;
  let key: string;
  const ports: EspMqttPort[] = [];
  const open = (id: string, password: string, extra: { caResources?: string[]; url?: string } = {}) => {
    const port = new Port({ url: extra.url ?? h.server.mqttUrl!, clientId: id, user: id, password, connectTimeoutMs: 5000, ...extra });
    ports.push(port);
    return port;
  };

  beforeAll(async () => {
    Port = await portClass();
    h = await startHarness();
    key = await registerDevice(h, "esp-mqtt-1");
  });
  afterAll(async () => {
    for (const p of ports) await p.close();
    await h?.close();
  });

  it("logs in, resolves once subscribed, and hands over the server's messages", async () => {
    const port = open("esp-mqtt-1", key);
    const received: [string, string][] = [];
    port.onMessage((topic, payload) => received.push([topic, payload]));
    await port.connect([otaCommandTopic("esp-mqtt-1")]);
    expect(port.connected()).toBe(true);
    // The server's own notifications go out as an operator's client sends these, on the command topic.
    const operator = await connectMqtt(h, "ops", h.admin);
    try {
      operator.publish(otaCommandTopic("esp-mqtt-1"), JSON.stringify({ action: "check" }));
      // A message over the port's limit is read and dropped; the parser stays in step for the next one.
      operator.publish(otaCommandTopic("esp-mqtt-1"), "x".repeat(6000));
      operator.publish(otaCommandTopic("esp-mqtt-1"), "after the big one");
      await eventually(() => received.length >= 2);
      expect(received.map(([, p]) => p)).toEqual([JSON.stringify({ action: "check" }), "after the big one"]);
      expect(received[0]![0]).toBe(otaCommandTopic("esp-mqtt-1"));
    } finally {
      await operator.endAsync(true);
    }
  });

  it("publishes what the server's clients see", async () => {
    const port = open("esp-mqtt-1", key);
    await port.connect([]);
    const operator = await connectMqtt(h, "ops", h.admin);
    try {
      await operator.subscribeAsync(otaStatusTopic("esp-mqtt-1"));
      const seen = nextMessage(operator, otaStatusTopic("esp-mqtt-1"));
      await port.publish(otaStatusTopic("esp-mqtt-1"), JSON.stringify({ hello: "from the port" }));
      expect(await seen).toEqual({ hello: "from the port" });
    } finally {
      await operator.endAsync(true);
    }
  });

  it("a refused log-in rejects connect at once, and a revoked device loses its session", async () => {
    const started = Date.now();
    await expect(open("esp-mqtt-1", "ota_dev_wrong").connect([])).rejects.toThrow(/MQTT connection failed or closed/);
    expect(Date.now() - started).toBeLessThan(4000); // the CONNACK refusal, not the connect timeout
    const port = open("esp-mqtt-1", key);
    await port.connect([]);
    expect((await api(h, "POST", "/api/v1/devices/esp-mqtt-1/revoke", asAdmin(h))).status).toBe(200);
    await eventually(() => !port.connected());
  });

  it("with pinned CAs only mqtts:// is used (TLS_REQUIRED), and mqtts:// needs a pinned CA", async () => {
    await expect(open("esp-mqtt-1", key, { caResources: ["ota-ca.der"] }).connect([])).rejects.toThrow(/^TLS_REQUIRED: /);
    await expect(open("esp-mqtt-1", key, { url: "mqtts://127.0.0.1:8883" }).connect([])).rejects.toThrow(/mqtts needs a pinned CA/);
  });
});
