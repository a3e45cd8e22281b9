// The pinned-CA TLS socket the HTTP and MQTT clients share: Moddable's TLS (embedded:io/socket/tcp/tls) over a TCP
// socket that catches what the TLS session throws. Moddable's TLS runs its handshake inside the TCP socket's
// onReadable/onWritable (examples/io/tcp/tlssocket/tlssocket.js:138-160) and catches nothing: a refused certificate
// would reach the native callback (modules/io/socket/lwip/tcp.c:503, inside xsBeginHost) and abort the VM
// (xs.h:1319, fxAbort: a restart in a release build), never the client's onError. The guard keeps the exception for
// tls-errors.ts, closes the connection and reports it as a socket error instead.
import TCP from "embedded:io/socket/tcp";
import TLSSocket from "embedded:io/socket/tcp/tls";
import Resource from "Resource";
import { classifyTlsFault, type TlsFailure } from "./tls-errors";

/** A connection registers one CA; with two pinned (a rotation), a failed connection makes the next one try the other,
 * and the caller's retries do the rest. */
export class PinnedCas {
  #cas: InstanceType<typeof Resource>[];
  #index = 0;
  constructor(names: string[]) {
    if (names.length < 1 || names.length > 2) throw new Error("pin one CA, or two while rotating");
    this.#cas = names.map((name) => new Resource(name)); // read in place from flash, as Moddable's TLS allows
  }
  current(): InstanceType<typeof Resource> {
    return this.#cas[this.#index];
  }
  failed(): void {
    this.#index = (this.#index + 1) % this.#cas.length;
  }
}

/** What the TLS session threw on one connection, if anything. */
export interface TlsFault {
  error?: unknown;
}

type Callback = ((count: number) => void) | undefined;

interface GuardedOptions {
  onReadable?: Callback;
  onWritable?: Callback;
  onError?: () => void;
  /** The TLS socket passes its own options on (tlssocket.js:53), so this is the `TCP` entry of socketOptions(). */
  TCP: { fault: TlsFault };
}

/** The TCP socket the TLS socket reads and writes, with its callbacks guarded. */
class GuardedTCP {
  // The TLS socket keeps its byte counts on its TCP socket (tlssocket.js:58-59).
  readable = 0;
  writable = 0;
  #socket: TCP | undefined;

  constructor(options: GuardedOptions) {
    const fault = options.TCP.fault;
    const onError = options.onError;
    const guard = (callback: Callback) => (count: number) => {
      try {
        callback?.(count);
      } catch (e) {
        fault.error = e;
        this.close();
        onError?.();
      }
    };
    const tcpOptions = { ...options, onReadable: guard(options.onReadable), onWritable: guard(options.onWritable), onError };
    this.#socket = new TCP(tcpOptions as unknown as ConstructorParameters<typeof TCP>[0]);
  }
  read(into: Uint8Array): void {
    this.#socket?.read(into);
  }
  /** The bytes still writable: the TLS session keeps this count (session_419.js:227). */
  write(bytes: ArrayBufferLike | Uint8Array): number {
    return this.#socket ? (this.#socket.write(bytes as ArrayBuffer) as unknown as number) : 0;
  }
  close(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.close();
  }
  get format(): "number" | "buffer" {
    return this.#socket?.format ?? "buffer";
  }
  set format(value: "number" | "buffer") {
    if (this.#socket) this.#socket.format = value;
  }
}

/** The `socket` option of Moddable's ECMA-419 HTTP and MQTT clients for a TLS connection anchored at the current CA. */
export function tlsSocketOptions(cas: PinnedCas, fault: TlsFault): Record<string, unknown> {
  return { io: TLSSocket, TCP: { io: GuardedTCP, fault }, secure: { certificate: cas.current() } };
}

/** The failure a connection's error stands for: a TLS refusal when the session threw, else a network failure. */
export function connectionFailure(fault: TlsFault, host: string): TlsFailure | null {
  return "error" in fault ? classifyTlsFault(fault.error, host) : null;
}
