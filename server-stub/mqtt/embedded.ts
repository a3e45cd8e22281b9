// Embedded aedes broker with authentication and the per-device ACL.
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { Aedes, type AuthenticateError, type Client } from "aedes";
import { deviceTopicPrefix, otaCommandTopic, parseStatusTopic, type OtaNotification } from "../../device/protocol";
import { allowListed } from "../auth/allow-list";
import { clientCertOptions, deviceOfCertificate } from "../auth/device-certs";
import type { Principal } from "../auth/principal";
import type { RequestLimits } from "../limits/request-limits";
import type { Ctx } from "../context";
import { logEvent } from "../log";
import type { OtaBus } from "./bus";
import { limitPacketSize } from "./packet-limit";
import { handleMqttStatus } from "./status-handler";

/** Topic a principal may subscribe to (device: only under devices/{own id}/). */
export function maySubscribe(p: Principal, topic: string): boolean {
  if (p.role === "device") return topic.startsWith(deviceTopicPrefix(p.device_id!));
  return true;
}

/** Topic a principal may publish to (device: under its own prefix, but never its own command topic). */
export function mayPublish(p: Principal, topic: string): boolean {
  if (p.role === "device") return topic.startsWith(deviceTopicPrefix(p.device_id!)) && topic !== otaCommandTopic(p.device_id!);
  return p.role === "admin" || p.role === "operator";
}

function authError(message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: 4 as const }) as AuthenticateError;
}

/** The principal a broker password (an API key or a JWT) stands for now, or null (revoked, expired, not allowed). */
function principalOfSecret(ctx: Ctx, secret: string): Principal | null {
  return allowListed(ctx, ctx.apiKeys.lookup(secret) ?? ctx.tokens.verify(secret));
}

/** How often live sessions re-check their credential (expiring tokens); a revocation re-checks at once. */
const RECHECK_MS = 1000;

/** `tls`: MQTT over TLS (mqtts) with the server's certificate, so a device's API key (its MQTT password) never crosses in
 * clear; with `clientCa`, a device may log in with its client certificate and no password (auth/device-certs.ts). */
export async function startEmbeddedBroker(
  ctx: Ctx, port: number, host: string, limits: Pick<RequestLimits, "mqttMaxPacketBytes">, tls: { cert: string; key: string; clientCa?: string | null } | null = null,
): Promise<OtaBus> {
  /** Each session's credential, asked again by recheck(): a password, or the TLS socket whose certificate logged in. */
  const sessions = new Map<Client, { principal: Principal; check: () => Principal | null }>();
  /** The TLS socket under each stream the broker reads (the packet cap's guard sits in between). */
  const tlsSockets = new WeakMap<object, Socket>();
  const broker = await Aedes.createBroker({
    authenticate(client, username, password, done) {
      const secret = password?.toString("utf8") ?? "";
      const socket = tlsSockets.get(client.conn);
      const check = secret ? () => principalOfSecret(ctx, secret) : () => deviceOfCertificate(ctx, socket);
      const p = check();
      if (!p) return done(authError("bad username or password"), false);
      // A device logs in with its own id as username, so the broker's view matches the ACL.
      if (p.role === "device" && username !== p.device_id) return done(authError("username must be the device id"), false);
      sessions.set(client, { principal: p, check });
      done(null, true);
    },
    authorizeSubscribe(client, sub, cb) {
      const p = sessions.get(client)?.principal;
      if (p && maySubscribe(p, sub.topic)) return cb(null, sub);
      logEvent(ctx.log, "mqtt_subscribe_denied", { device_id: p?.device_id, topic: sub.topic }, "warn");
      cb(null, null); // negative SUBACK (0x80) instead of dropping the connection
    },
    authorizePublish(client, packet, cb) {
      if (!client) return cb(null); // the server itself
      const p = sessions.get(client)?.principal;
      if (packet.retain) {
        // Only the server publishes for devices to read later; a retained message would outlive its sender's rights.
        logEvent(ctx.log, "mqtt_retain_denied", { device_id: p?.device_id, topic: packet.topic }, "warn");
        return cb(new Error("retained publishes are not accepted"));
      }
      if (p && mayPublish(p, packet.topic)) return cb(null);
      logEvent(ctx.log, "mqtt_publish_denied", { device_id: p?.device_id, topic: packet.topic }, "warn");
      cb(new Error("not authorized"));
    },
  });
  await new Promise<void>((resolve) =>
    broker.subscribe(
      "devices/+/ota/status",
      (packet, cb) => {
        const deviceId = parseStatusTopic(packet.topic);
        if (deviceId) {
          try {
            handleMqttStatus(ctx, deviceId, Buffer.from(packet.payload));
          } catch (e) {
            ctx.log.error({ err: e, device_id: deviceId }, `mqtt_status_failed device_id=${deviceId}`);
          }
        }
        cb();
      },
      resolve,
    ),
  );
  broker.on("clientDisconnect", (client) => sessions.delete(client));
  /** Closes every session whose credential no longer holds (revoked key or device, expired token). */
  const recheck = () => {
    for (const [client, { principal, check }] of sessions) {
      if (check()) continue;
      sessions.delete(client);
      logEvent(ctx.log, "mqtt_session_closed", { device_id: principal.device_id, subject: principal.subject, reason: "credential_no_longer_valid" }, "warn");
      client.close();
    }
  };
  const timer = setInterval(recheck, RECHECK_MS);
  timer.unref();
  const onSocket = (socket: Socket) => {
    const guarded = limitPacketSize(socket, limits.mqttMaxPacketBytes, (size) =>
      logEvent(ctx.log, "mqtt_packet_too_large", { remote: socket.remoteAddress, size, max: limits.mqttMaxPacketBytes }, "warn"),
    );
    tlsSockets.set(guarded, socket);
    broker.handle(guarded);
  };
  // With TLS the packet cap reads the decrypted stream, as the broker does.
  const server: Server = tls ? createTlsServer({ cert: tls.cert, key: tls.key, ...clientCertOptions(tls.clientCa) }, onSocket) : createServer(onSocket);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const actualPort = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? "mqtts" : "mqtt"}://${host === "0.0.0.0" || host === "::" ? "localhost" : host}:${actualPort}`,
    port: actualPort,
    publish(deviceId: string, message: OtaNotification) {
      broker.publish({ cmd: "publish", topic: otaCommandTopic(deviceId), payload: Buffer.from(JSON.stringify(message)), qos: 1, retain: false, dup: false }, (err) => {
        if (err) ctx.log.warn({ err, device_id: deviceId }, `mqtt_publish_failed device_id=${deviceId}`);
      });
    },
    connected: () => !broker.closed,
    recheckCredentials: recheck,
    async close() {
      clearInterval(timer);
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
