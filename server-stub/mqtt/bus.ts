import type { OtaNotification } from "../../device/protocol";

/** The server's side of MQTT: publish notifications, receive status (wired by the implementation). */
export interface OtaBus {
  publish(deviceId: string, message: OtaNotification): void;
  /** mqtt://host:port devices should use, when known. */
  readonly url: string | null;
  /** Port of the embedded broker (null with an external broker). */
  readonly port: number | null;
  /** Whether the server is connected to its broker now (readiness). */
  connected(): boolean;
  /** Closes live sessions whose credential was revoked or expired (an external broker: brings its accounts up to date). */
  recheckCredentials(): void;
  close(): Promise<void>;
}
