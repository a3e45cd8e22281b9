// The server address a device's connection reached, as a URL base: the socket's local address and port, which
// the device demonstrably can connect to. Not the Host header: Moddable's HTTP client sends it without the port.
import { isIPv4, isIPv6 } from "node:net";
import type { FastifyRequest } from "fastify";

/** Per connection: a device's checks come over one keep-alive connection, whose local address never changes. */
const origins = new WeakMap<object, string | null>();

export function reachedOrigin(req: FastifyRequest): string | null {
  const socket = req.raw.socket;
  const known = origins.get(socket);
  if (known !== undefined) return known;
  const origin = originOf(socket, req.protocol);
  if (socket.localPort) origins.set(socket, origin); // not before the socket is bound (it always is, on a request)
  return origin;
}

function originOf(socket: FastifyRequest["raw"]["socket"], protocol: string): string | null {
  let address = socket.localAddress;
  const port = socket.localPort;
  if (!address || !port) return null;
  // A dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d: the device used a.b.c.d.
  if (address.startsWith("::ffff:") && isIPv4(address.slice(7))) address = address.slice(7);
  if (!isIPv4(address) && !isIPv6(address.split("%")[0]!)) return null;
  const host = isIPv6(address.split("%")[0]!) ? `[${address.replace("%", "%25")}]` : address;
  return `${protocol}://${host}:${port}`;
}
