// The network under the XS adapter run's TCP and net fakes: real TCP connections from this process (the
// device's bytes cross a real socket to a real server), lwIP-like name resolution, and a switch that takes the
// link down (connections refused, as lwIP reports an unreachable host) and brings it back.
import { lookup } from "node:dns/promises";
import { connect, isIPv4 } from "node:net";
import type { Socket } from "node:net";
import { TCP_SNDBUF as SNDBUF } from "./moddable-fakes/calls";

/** CONFIG_LWIP_TCP_MSS's default in ESP-IDF: the most a received segment carries. */
const TCP_MSS = 1440;

export type TcpEventSink = (id: number, event: "writable" | "data" | "error", bytes?: Uint8Array) => void;

export class HostNetwork {
  /** While true, every connection attempt fails and open connections are reset. */
  down = false;
  /** Name lookups and connection attempts that failed because the link was down. */
  refused = 0;
  /** Bytes the device received, all connections together. */
  received = 0;
  /** Connections opened (each HTTP request of the adapters opens one). */
  connections = 0;
}

/** One boot's sockets on a HostNetwork; close() drops them all (the chip lost power or restarted). */
export class HostSockets {
  private sockets = new Map<number, Socket>();
  private nextId = 1;

  constructor(private readonly network: HostNetwork, private readonly sink: TcpEventSink) {}

  /** lwIP's dns_gethostbyname answers IPv4 (LWIP_IPV6 off in Moddable's ESP32 sdkconfig): "" when it cannot. */
  async resolve(host: string): Promise<string> {
    if (isIPv4(host)) return host; // dns_gethostbyname parses a literal without asking anyone
    if (this.network.down) return (this.network.refused++, "");
    try {
      return (await lookup(host, { family: 4 })).address;
    } catch {
      return "";
    }
  }

  open(address: string, port: number): number {
    const id = this.nextId++;
    if (this.network.down) {
      this.network.refused++;
      setImmediate(() => this.sink(id, "error"));
      return id;
    }
    this.network.connections++;
    const socket = connect({ host: address, port });
    this.sockets.set(id, socket);
    socket.on("connect", () => this.sink(id, "writable"));
    socket.on("data", (chunk: Buffer) => {
      if (this.network.down) return void socket.destroy();
      this.network.received += chunk.length;
      // The chip's stack hands over one TCP segment at a time (each an onReadable), never the host's large reads.
      for (let at = 0; at < chunk.length; at += TCP_MSS) this.sink(id, "data", new Uint8Array(chunk.buffer, chunk.byteOffset + at, Math.min(TCP_MSS, chunk.length - at)));
    });
    // A peer close and a reset both reach lwIP's socket as an error (tcpReceive with no pbuf, tcpError).
    socket.on("close", () => {
      if (this.sockets.delete(id)) this.sink(id, "error");
    });
    socket.on("error", () => {});
    return id;
  }

  /** → what is left of the send buffer: the host's socket takes everything, and says writable again once sent. */
  write(id: number, bytes: Uint8Array): number {
    const socket = this.sockets.get(id);
    if (!socket) return SNDBUF;
    socket.write(Buffer.from(bytes), () => this.sockets.has(id) && this.sink(id, "writable"));
    return SNDBUF - Math.min(bytes.length, SNDBUF);
  }

  close(id: number) {
    const socket = this.sockets.get(id);
    this.sockets.delete(id);
    socket?.destroy();
  }

  closeAll() {
    for (const id of [...this.sockets.keys()]) this.close(id);
  }
}
