// --mqtt-url: an external broker. With `provisioning: "dynsec"` (the default) it is Mosquitto 2 with the
// dynamic-security plugin, and the server keeps each device's account and ACL there (provisioning.ts), connecting
// with the dynsec admin account. With "none" the broker's own configuration must give each device its topics
// (Mosquitto: `pattern read devices/%u/ota` and `pattern write devices/%u/ota/status`).
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import mqtt from "mqtt";
import { otaCommandTopic, parseStatusTopic, type OtaNotification } from "../../device/protocol";
import type { Ctx } from "../context";
import { logEvent } from "../log";
import type { OtaBus } from "./bus";
import { DynsecControl } from "./dynsec";
import { BrokerProvisioner, recordDeviceKey, Sealer } from "./provisioning";
import { handleMqttStatus } from "./status-handler";

export interface ExternalBrokerOptions {
  url: string;
  /** The server's broker account (the dynsec admin with provisioning); the URL's user info otherwise. */
  username?: string | null;
  password?: string | null;
  provisioning?: "dynsec" | "none";
  /** Derives the key that seals device keys waiting for the broker (the server's JWT secret). */
  serverSecret: string;
  /** How often the broker is brought in line with the database (revocations by the CLI or another replica). */
  reconcileMs?: number;
  /** Whether this replica leads (cluster/leadership.ts): only the leader removes accounts the database does not know. */
  isLeader?: () => boolean;
}

/** The URL without user info, safe to log and to hand to devices. */
export function publicBrokerUrl(url: string): string {
  const u = new URL(url);
  u.username = "";
  u.password = "";
  return u.toString().replace(/\/$/, "");
}

export async function connectExternalBroker(ctx: Ctx, opts: ExternalBrokerOptions): Promise<OtaBus> {
  const dynsec = (opts.provisioning ?? "dynsec") === "dynsec";
  const url = publicBrokerUrl(opts.url);
  const fromUrl = new URL(opts.url);
  const username = opts.username ?? (decodeURIComponent(fromUrl.username) || undefined);
  const password = opts.password ?? (decodeURIComponent(fromUrl.password) || undefined);
  if (dynsec && !username) throw new Error("--mqtt-url with dynamic-security provisioning needs the broker's admin account (OTA_MQTT_USERNAME, OTA_MQTT_PASSWORD)");
  // Unique per process (replicas may share a pid in containers); a duplicate client id would kick the other.
  const clientId = `ota-server-${hostname().slice(0, 20)}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const client = await mqtt.connectAsync(url, { clientId, clean: true, reconnectPeriod: 2000, username, password });
  client.on("error", (err) => ctx.log.warn({ err: { message: err.message } }, "mqtt_external_error"));
  client.on("message", (topic, payload) => {
    const deviceId = parseStatusTopic(topic);
    if (!deviceId) return;
    try {
      handleMqttStatus(ctx, deviceId, payload);
    } catch (e) {
      ctx.log.error({ err: e, device_id: deviceId }, `mqtt_status_failed device_id=${deviceId}`);
    }
  });

  let provisioner: BrokerProvisioner | null = null;
  let control: DynsecControl | null = null;
  let timer: NodeJS.Timeout | null = null;
  try {
    if (dynsec) {
      control = new DynsecControl(client);
      const sealer = new Sealer(opts.serverSecret);
      provisioner = new BrokerProvisioner(ctx, control, sealer, username!);
      await provisioner.ensureServerRole(() => (client.connected ? Promise.resolve() : new Promise((resolve) => client.once("connect", () => resolve()))));
      ctx.apiKeys.onDeviceKey = (deviceId, apiKey) => {
        recordDeviceKey(ctx.db, sealer, deviceId, apiKey, ctx.clock.now());
        setImmediate(() => void provisioner!.reconcileSoon()); // after the creating transaction committed
      };
      const full = () => opts.isLeader?.() ?? true;
      await provisioner.reconcileSoon(full());
      // A reconnect may follow a broker restart or outage: bring it up to date.
      client.on("connect", () => void provisioner!.reconcileSoon(full()));
      timer = setInterval(() => void provisioner!.reconcileSoon(), opts.reconcileMs ?? 5000);
      timer.unref();
    }
    // Replicas share the status stream (one of them handles each report) on brokers that provision, i.e. Mosquitto.
    await client.subscribeAsync(dynsec ? "$share/ota-server/devices/+/ota/status" : "devices/+/ota/status", { qos: 1 });
  } catch (e) {
    if (timer) clearInterval(timer);
    control?.close();
    await client.endAsync(true);
    throw e;
  }
  logEvent(ctx.log, "mqtt_external_connected", { url, provisioning: dynsec ? "dynsec" : "none" });
  return {
    url,
    port: null,
    publish(deviceId: string, message: OtaNotification) {
      client.publish(otaCommandTopic(deviceId), JSON.stringify(message), { qos: 1 }, (err) => {
        if (err) ctx.log.warn({ err, device_id: deviceId }, `mqtt_publish_failed device_id=${deviceId}`);
      });
    },
    connected: () => client.connected,
    // The broker checks passwords itself; revocations reach it through provisioning.
    recheckCredentials: () => void provisioner?.reconcileSoon(),
    async close() {
      if (timer) clearInterval(timer);
      ctx.apiKeys.onDeviceKey = null;
      const ended = provisioner?.stop();
      control?.close(); // a batch still waiting for its answer fails now instead of in 10 s
      await ended;
      await client.endAsync();
    },
  };
}
