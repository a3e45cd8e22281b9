// Mutual TLS (optional, --tls-client-ca): a device's client certificate stands for the device instead of an API key.
// It must chain to the client CA (Node's verdict, socket.authorized), be recorded for that device (ota-server
// device-cert; revoking the device or the credential's key id refuses it at once) and still name it (its CN). It is
// a device credential only: operators keep their keys and tokens.
import { TLSSocket } from "node:tls";
import type { Ctx } from "../context";
import { allowListed } from "./allow-list";
import type { Principal } from "./principal";

/** Options for the HTTPS and MQTTS listeners: ask for a client certificate and check it against `clientCa`, but let a
 * client without one (an operator, a device with an API key) finish the handshake. */
export function clientCertOptions(clientCa: string | null | undefined): { ca: string; requestCert: true; rejectUnauthorized: false } | Record<string, never> {
  return clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: false } : {};
}

/** The device the connection's verified client certificate stands for, or null. */
export function deviceOfCertificate(ctx: Ctx, socket: unknown): Principal | null {
  // Unknown CA, expired, not a client certificate: Node leaves `authorized` false.
  if (!(socket instanceof TLSSocket) || !socket.authorized) return null;
  const peer = socket.getPeerX509Certificate();
  if (!peer) return null;
  const p = ctx.apiKeys.lookupDeviceCert(peer.fingerprint256);
  if (!p) return null;
  const commonName = /(?:^|\n)CN=([^\n]*)/.exec(peer.subject)?.[1];
  return commonName === p.device_id ? allowListed(ctx, p) : null;
}
