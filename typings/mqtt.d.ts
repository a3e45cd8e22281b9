// Moddable's MQTT 3.1.1 client (modules/network/mqtt/mqtt.js), which neither @moddable/typings 5.6.0 nor
// the SDK declares. Written from that source: the members our adapter uses. A module file, mapped to `mqtt`
// by tsconfig.device.json `paths` (the npm package `mqtt`, used by host-sim, has the same name) and by
// manifest.json (a .d.ts module entry is how mcconfig's tsc finds types; without it, TS7016 under strict).
export interface ClientOptions {
  host: string;
  /** Default 1883 (80 with `path`, i.e. MQTT over WebSocket). */
  port?: number;
  id?: string;
  user?: string;
  password?: string | ArrayBuffer;
  /** Keep-alive interval in ms; 0 disables it. */
  timeout?: number;
  path?: string;
  will?: { topic: string; message: string | ArrayBuffer; quality?: 0 | 1 | 2; retain?: boolean };
}
export default class Client {
  constructor(options: ClientOptions);
  onReady?: () => void;
  onMessage?: (topic: string, body: ArrayBuffer) => void;
  onClose?: () => void;
  publish(topic: string, data: string | ArrayBuffer, flags?: { retain?: boolean; quality?: 0 | 1 | 2; duplicate?: boolean }): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  close(immediate?: boolean): void;
}
