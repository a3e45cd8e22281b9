import type { Logger } from "pino";
import type { OtaNotification } from "../device/protocol";
import type { ApiKeyStore } from "./auth/api-keys";
import type { TokenService } from "./auth/tokens";
import type { Clock } from "./clock";
import type { Db } from "./db";
import type { KeyStore } from "./signing/keystore";
import type { BlobStore } from "./storage/blobs";

export interface ServiceConfig {
  publicUrl: string;
  manifestTtlSeconds: number;
  maxUploadBytes: number;
  /** Build and offer delta patches (services/deltas.ts). */
  deltas: boolean;
  /**
   * Silence timeout for updates that set none (direct updates without timeout_minutes).
   * 0 = none: an offline device keeps its direct update until it calls in. Campaigns always set one.
   */
  defaultTimeoutMinutes: number;
  devTokenEnabled: boolean;
}

/** Everything the services need; built once by server.ts and passed explicitly. */
export interface Ctx {
  db: Db;
  clock: Clock;
  log: Logger;
  keys: KeyStore;
  apiKeys: ApiKeyStore;
  tokens: TokenService;
  blobs: BlobStore;
  config: ServiceConfig;
  /** Publishes on devices/{id}/ota (no-op without MQTT). */
  notify(deviceId: string, message: OtaNotification): void;
  /** Asks the campaign engine to re-evaluate soon (after a status change). */
  kick(): void;
}
