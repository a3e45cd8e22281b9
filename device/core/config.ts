// The agent's options. Only identity, server and keys are required; the rest have field-proven defaults.
import type { SignatureAlg } from "../protocol/manifest";
import { SIGNATURE_ALGORITHMS } from "../protocol/manifest";

export interface TrustedKey {
  /** The server's key id (GET /api/v1/keys); optional: without it any trusted key may match. */
  keyId?: string;
  /** base64 of the public key: 32 bytes for ed25519, the 65-byte uncompressed point for ECDSA P-256. */
  publicKey: string;
  /** Its algorithm; absent: ed25519 (the only one before). */
  alg?: SignatureAlg;
}

/** A check the application registers for the post-update self-test; throw or return false to fail it. */
export type SelfTestCheck = () => Promise<boolean | void> | boolean | void;

/** A named pre/post-update command (e.g. "backup_config", "verify_config"). Throw to fail the update. */
export type CommandHook = (context: { updateId: string; version: string }) => Promise<void> | void;

/** The application's say on when an offered update may start: busy until `until` (device clock, ms) and why, or null. */
export type DeferHook = (offer: { updateId: string; version: string; mandatory: boolean }) => Deferral | null | Promise<Deferral | null>;
export interface Deferral {
  until: number;
  reason: string;
}

export interface AgentConfig {
  deviceId: string;
  deviceModel: string;
  hardwareVersion: string;
  /** e.g. "http://ota.example.com:8221" */
  serverUrl: string;
  /** The device credential the server issued (X-API-Key). */
  apiKey: string;
  trustedKeys: TrustedKey[];
  /** The manifest signature algorithms this device accepts; each needs a verifier from the platform
   * (Ports.verifiers). Default: every one the platform verifies. */
  signatureAlgs?: SignatureAlg[];
  /** The firmware team's release public keys, baked in; a signed key list (release-keys.ts) may replace them. */
  releaseKeys?: TrustedKey[];
  /** Accept an image only with a valid release signature too, not just the server's manifest signature. */
  requireReleaseSignature?: boolean;
  /** The key_list_version the baked-in keys correspond to: only a higher one replaces them. Default 0. */
  keyListVersion?: number;
  /** The CAs the server's TLS certificate must chain to: one, or two while a CA is rotated (PEM text on the
   * simulator, names of DER resources on the ESP32). The platform's HTTP and MQTT ports enforce them (host name and validity checked, plain URLs refused); the agent
   * refuses to start with a plain serverUrl when any is set. Empty: plain HTTP allowed (a loopback test bench). */
  pinnedCas?: string[];
  /** Download buffer; the one fixed-size buffer the agent streams through. Default 4096. */
  chunkSize?: number;
  /** Persist the download offset at least every this many bytes (a multiple of 4096). Default 65536. */
  persistEvery?: number;
  /** Post-update self-test deadline. Default 60 s. */
  selfTestDeadlineMs?: number;
  /** HTTP poll period (the fallback when MQTT is down or absent). Default 1 h, with ±20 % jitter. */
  pollIntervalMs?: number;
  /** A download read that makes no progress for this long is a stall. Default 30 s. */
  stallTimeoutMs?: number;
  /** API request timeout. Default 15 s. */
  requestTimeoutMs?: number;
  /** Download attempts (each resumes with Range) before reporting DOWNLOAD_FAILED. Default 8. */
  maxDownloadAttempts?: number;
  /** First retry delay; doubles each attempt, with full jitter. Default 1 s, capped at 60 s. */
  retryBaseMs?: number;
  /** Report progress when it advanced by at least this many percent. Default 5. */
  progressStepPercent?: number;
  /** ...and at most one report per this many ms (the download waits for each; a fast link needs few). Default 2 s. */
  progressMinIntervalMs?: number;
  /** Tolerated clock skew for manifest validity. Default 5 min. */
  clockSkewMs?: number;
  /** Trust manifests' time window only when the clock is synced (a chip without SNTP starts in 1970). */
  clockTrusted?: () => boolean;
  /** Self-test checks of the application, run after network, server and MQTT are shown to work. */
  selfTests?: Record<string, SelfTestCheck>;
  /** Named pre/post-update commands a manifest may ask for. */
  commands?: Record<string, CommandHook>;
  /** Application metrics for health reports: name → a reader of the current value. */
  metrics?: Record<string, () => number>;
  /** How long after confirming an update the agent reports health (0 = not at all). Default 1 h. */
  healthSoakMs?: number;
  /** Health report period within the soak window. Default 10 min. */
  healthIntervalMs?: number;
  /** One health report at each start, for the server's baseline. Default true. */
  healthReportAtStart?: boolean;
  /** Asked before each offered update starts; a deferral is reported as "deferred", not a failure. Default: never busy. */
  deferUpdate?: DeferHook;
  /** How long one update may be deferred, from its first deferral; after that it starts anyway. Default 24 h. */
  maxDeferralMs?: number;
}

export type ResolvedConfig = Required<Omit<AgentConfig, "clockTrusted" | "signatureAlgs">> & { clockTrusted: () => boolean; signatureAlgs?: SignatureAlg[] };

export function resolveConfig(c: AgentConfig): ResolvedConfig {
  const chunkSize = c.chunkSize ?? 4096;
  const persistEvery = c.persistEvery ?? 65536;
  if (!Number.isInteger(chunkSize) || chunkSize < 256) throw new Error("chunkSize must be an integer >= 256");
  if (persistEvery % 4096 !== 0 || persistEvery <= 0) throw new Error("persistEvery must be a positive multiple of 4096");
  if (c.trustedKeys.length === 0) throw new Error("at least one trusted public key is required");
  const unknownAlg = [...(c.signatureAlgs ?? []), ...c.trustedKeys.map((k) => k.alg ?? "ed25519")].find((a) => !(SIGNATURE_ALGORITHMS as readonly string[]).includes(a));
  if (unknownAlg !== undefined) throw new Error(`unknown signature algorithm ${unknownAlg} (known: ${SIGNATURE_ALGORITHMS.join(", ")})`);
  if (c.signatureAlgs?.length === 0) throw new Error("signatureAlgs must name at least one algorithm");
  if (c.requireReleaseSignature && !c.releaseKeys?.length) throw new Error("requireReleaseSignature needs at least one release key");
  const pinnedCas = c.pinnedCas ?? [];
  if (pinnedCas.length > 2) throw new Error("pin one CA, or two while rotating");
  if (pinnedCas.length > 0 && !/^https:\/\//i.test(c.serverUrl)) throw new Error(`TLS_REQUIRED: serverUrl must be https:// when CAs are pinned, not ${c.serverUrl}`);
  return {
    ...c,
    serverUrl: c.serverUrl.replace(/\/+$/, ""),
    pinnedCas,
    chunkSize,
    persistEvery,
    selfTestDeadlineMs: c.selfTestDeadlineMs ?? 60_000,
    pollIntervalMs: c.pollIntervalMs ?? 3_600_000,
    stallTimeoutMs: c.stallTimeoutMs ?? 30_000,
    requestTimeoutMs: c.requestTimeoutMs ?? 15_000,
    maxDownloadAttempts: c.maxDownloadAttempts ?? 8,
    retryBaseMs: c.retryBaseMs ?? 1000,
    progressStepPercent: c.progressStepPercent ?? 5,
    progressMinIntervalMs: c.progressMinIntervalMs ?? 2000,
    clockSkewMs: c.clockSkewMs ?? 300_000,
    clockTrusted: c.clockTrusted ?? (() => true),
    selfTests: c.selfTests ?? {},
    // No prototype: a manifest's command named "toString" must find no hook, not Object.prototype's.
    commands: Object.assign(Object.create(null) as Record<string, CommandHook>, c.commands),
    metrics: c.metrics ?? {},
    healthSoakMs: c.healthSoakMs ?? 3_600_000,
    healthIntervalMs: Math.max(1000, c.healthIntervalMs ?? 600_000),
    healthReportAtStart: c.healthReportAtStart ?? true,
    deferUpdate: c.deferUpdate ?? (() => null),
    maxDeferralMs: c.maxDeferralMs ?? 86_400_000,
    releaseKeys: c.releaseKeys ?? [],
    requireReleaseSignature: c.requireReleaseSignature ?? false,
    keyListVersion: c.keyListVersion ?? 0,
  };
}
