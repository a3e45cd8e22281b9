// --mqtt-url: use an external broker (e.g. Mosquitto). Its ACL must give each device
// readwrite on devices/<username>/# (Mosquitto: `pattern readwrite devices/%u/#`).
import mqtt from "mqtt";
import { otaCommandTopic, parseStatusTopic, type OtaNotification } from "../../device/protocol";
import type { Ctx } from "../context";
import type { OtaBus } from "./bus";
import { handleMqttStatus } from "./status-handler";

export async function connectExternalBroker(ctx: Ctx, url: string): Promise<OtaBus> {
  const client = await mqtt.connectAsync(url, { clientId: `ota-server-${process.pid}`, clean: true, reconnectPeriod: 2000 });
  client.on("message", (topic, payload) => {
    const deviceId = parseStatusTopic(topic);
    if (!deviceId) return;
    try {
      handleMqttStatus(ctx, deviceId, payload);
    } catch (e) {
      ctx.log.error({ err: e, device_id: deviceId }, `mqtt_status_failed device_id=${deviceId}`);
    }
  });
  client.on("error", (err) => ctx.log.warn({ err }, "mqtt_external_error"));
  await client.subscribeAsync("devices/+/ota/status", { qos: 1 });
  return {
    url,
    port: null,
    publish(deviceId: string, message: OtaNotification) {
      client.publish(otaCommandTopic(deviceId), JSON.stringify(message), { qos: 1 }, (err) => {
        if (err) ctx.log.warn({ err, device_id: deviceId }, `mqtt_publish_failed device_id=${deviceId}`);
      });
    },
    recheckCredentials() {}, // the external broker authenticates its own clients
    async close() {
      await client.endAsync();
    },
  };
}
