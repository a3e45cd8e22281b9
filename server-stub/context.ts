import type { Logger } from "pino";
import type { OtaNotification, PublicKeyEntry } from "../device/protocol";
import type { ApiKeyStore } from "./auth/api-keys";
import type { TokenService } from "./auth/tokens";
import type { Clock } from "./clock";
import type { Db } from "./db";
import type { KeyStore } from "./signing/keystore";
import type { BlobStore } from "./storage/blobs";

/** The seed's cdn_config: manifests point at base_url (which mirrors the server's download paths) and carry
 * fallback_url (or, without one, the server's own URL) for the device to switch to after a failure. */
export interface CdnConfig {
  enabled: boolean;
  base_url: string;
  cache_control: string | null;
  fallback_url: string | null;
}

export interface ServiceConfig {
  publicUrl: string;
  /** The operator set publicUrl (--public-url). Without it, manifests point devices at the address each one reached
   * (services/manifest.ts), never at the default `localhost`, which some resolvers answer only with ::1. */
  publicUrlConfigured?: boolean;
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
  /** Firmware metadata, as a form field or a file part. */
  metadataMaxBytes: number;
  /** Only registered device ids may authenticate (auth/allow-list.ts). */
  deviceAllowList: boolean;
  /** A campaign's approver must be someone other than its creator. */
  distinctApprover: boolean;
  cdn: CdnConfig | null;
  /** Release public keys (the firmware team's; the server never holds their private halves). */
  releaseKeys: PublicKeyEntry[];
  /** Refuse uploads without a valid release signature. */
  requireReleaseSignature: boolean;
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
  /** A key or device was revoked: live MQTT sessions re-check their credentials now. */
  credentialsChanged(): void;
}
