// Moddable's ECMA-419 MQTT 3.1.1 client (examples/io/tcp/mqttclient/mqttclient.js), written from that source: the
// SDK's typings/embedded_network/mqtt/client.d.ts gives onControl two parameters where the client passes one message,
// and write() no null data for control packets. A module file, mapped to `embedded:network/mqtt/client` by
// manifest.json (what mcconfig's tsc sees) and by tsconfig.device.json `paths` (what `npm run typecheck` sees).

export interface ReadableOptions {
  /** More fragments of this message follow. */
  more: boolean;
  /** On a message's first fragment: its topic, whole payload length and QoS. */
  topic?: string;
  byteLength?: number;
  QoS?: number;
}

export interface ControlMessage {
  /** MQTTClient.CONNACK, SUBACK, PUBACK... */
  operation: number;
  id?: number;
  /** SUBACK: the granted QoS of each topic (0x80 = refused). */
  payload?: number[];
}

export interface Options {
  host: string;
  /** Default 1883. */
  port?: number;
  id?: string;
  user?: string;
  password?: string;
  clean?: boolean;
  /** Keep-alive in ms; 0 (default) sends no PINGREQ. */
  keepalive?: number;
  /** The `dns` option of the ECMA-419 clients: `{ io: Resolver }`. */
  dns: { io: unknown };
  /** The `socket` option: `{ io: TCP }` or a TLS socket's options. */
  socket: Record<string, unknown>;
  onControl?: (this: MQTTClient, message: ControlMessage) => void;
  onReadable?: (this: MQTTClient, count: number, options: ReadableOptions) => void;
  onWritable?: (this: MQTTClient, count: number) => void;
  /** Called with no argument: a socket error, a refused CONNACK, a protocol error or a missed PINGRESP; the client
   * has closed itself. */
  onError?: (this: MQTTClient) => void;
}

export interface WriteOptions {
  operation?: number;
  id?: number;
  topic?: string;
  QoS?: number;
  retain?: boolean;
  byteLength?: number;
  items?: { topic: string; QoS?: number }[];
}

export default class MQTTClient {
  constructor(options: Options);
  read(count?: number): ArrayBuffer | undefined;
  /** Throws "overflow" when the packet does not fit in what the socket can take now. */
  write(data: ArrayBufferLike | null, options?: WriteOptions): number;
  close(): void;

  static readonly CONNECT: 1;
  static readonly CONNACK: 2;
  static readonly PUBLISH: 3;
  static readonly PUBACK: 4;
  static readonly SUBSCRIBE: 8;
  static readonly SUBACK: 9;
  static readonly PINGREQ: 12;
  static readonly PINGRESP: 13;
  static readonly DISCONNECT: 14;
}
