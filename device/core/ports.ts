// Every way the agent touches the world, in one place. The core imports nothing else from its platform:
// the ESP32 build implements these with Moddable modules and a native module, host-sim with the simulated
// flash, Node's HTTP and mqtt.js, and the XS runs with a bridge to the Node host.
// Flash, hash and storage calls are synchronous, as they are on the chip; network calls are asynchronous.
import type { CoredumpSummary, ResetReason } from "../protocol/health";
import type { SignatureAlg } from "../protocol/manifest";

/** An app partition (esp_partition_t of type app). */
export interface Slot {
  label: string;
  /** ESP-IDF subtype: 0x10 + n for ota_n. */
  subtype: number;
  size: number;
}

/** esp_ota_img_states_t, or "none" when otadata has no entry for the slot. */
export type ImageState = "new" | "pending_verify" | "valid" | "invalid" | "aborted" | "undefined" | "none";

/** The parts of esp_app_desc_t the agent uses. */
export interface AppDescription {
  version: string;
  projectName: string;
  secureVersion: number;
  idfVersion: string;
}

/** A failure of an OTA port call, named after ESP-IDF's error (e.g. "ESP_ERR_OTA_VALIDATE_FAILED"). */
export class OtaPortError extends Error {
  constructor(readonly espName: string, message: string) {
    super(message);
  }
}
// The name lives on the prototype: `this.name = …` throws under Moddable's frozen Error.prototype.
Object.defineProperty(OtaPortError.prototype, "name", { value: "OtaPortError" });

/** An open update of one slot: sequential writes, as esp_ota_write. */
export interface OtaWriter {
  /** Bytes written so far (the resume offset included). */
  readonly written: number;
  write(bytes: Uint8Array): void;
  /** esp_ota_end: verifies the whole image; throws OtaPortError("ESP_ERR_OTA_VALIDATE_FAILED") if it is not valid. */
  end(): void;
  abort(): void;
}

/** The esp_ota_* surface the agent needs (ESP-IDF v6.0 semantics, rollback enabled). */
export interface OtaPort {
  /** esp_image_header_t.chip_id of this chip (0 = ESP32). */
  readonly chipId: number;
  running(): Slot;
  /** esp_ota_get_next_update_partition(NULL) */
  nextUpdate(): Slot | null;
  /** The other slot (the rollback target), or null on a single-slot layout. */
  other(): Slot | null;
  state(slot: Slot): ImageState;
  description(slot: Slot): AppDescription | null;
  /** Reads image bytes back from a slot (to re-hash a resumed download after a reboot). */
  read(slot: Slot, offset: number, into: Uint8Array): void;
  /** esp_ota_begin with sequential writes (sectors are erased as writes reach them). */
  begin(slot: Slot, imageSize: number): OtaWriter;
  /** esp_ota_resume at a sector-aligned offset: no erase of what is already there, no otadata change. */
  resume(slot: Slot, offset: number): OtaWriter;
  setBoot(slot: Slot): void;
  markValid(): void;
  /** esp_ota_mark_app_invalid_rollback (no reboot: the agent restarts through RestartPort). */
  markInvalid(): void;
  rollbackPossible(): boolean;
}

export interface HttpRequest {
  method: "GET" | "POST";
  url: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

export interface HttpResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
}

/** A response body read in pieces into the caller's buffer: the agent never holds more than that buffer. */
export interface HttpBodyStream {
  status: number;
  headers: Record<string, string>;
  /** Reads up to into.length bytes; resolves 0 at the end of the body. Rejects on a network error. */
  read(into: Uint8Array): Promise<number>;
  close(): void;
}

export interface HttpPort {
  /** A small JSON exchange (API calls). Rejects on network errors; HTTP errors resolve with their status. */
  request(req: HttpRequest): Promise<HttpResponse>;
  /** A streamed GET (firmware downloads). */
  stream(url: string, headers: Record<string, string>, timeoutMs: number): Promise<HttpBodyStream>;
}

export interface MqttPort {
  /** Connects (or reconnects) and subscribes; resolves once subscribed. */
  connect(subscriptions: string[]): Promise<void>;
  connected(): boolean;
  publish(topic: string, payload: string): Promise<void>;
  onMessage(handler: (topic: string, payload: string) => void): void;
  close(): Promise<void>;
}

/** Incremental SHA-256 (native on the ESP32: crypt's Digest). */
export interface Sha256 {
  update(bytes: Uint8Array): void;
  /** 32 bytes; the hash cannot be updated afterwards. */
  digest(): Uint8Array;
}

export interface HashPort {
  sha256(): Sha256;
  /** Optional native ed25519 verification, used when Ports.verifiers is absent (the port shape before it). */
  verifyEd25519?(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean;
}

/** One signature algorithm, each in its own file behind this interface (as MCUboot's image validators): tweetnacl's
 * ed25519 in the core, our native ed25519 and mbedTLS's ECDSA P-256 on the ESP32, Node's crypto on the simulator. */
export interface SignatureVerifier {
  readonly alg: SignatureAlg;
  /** Bytes; input of any other length is refused before verify() is called. */
  readonly publicKeyLength: number;
  readonly signatureLength: number;
  /** True only when `signature` is a valid signature of `message` by `publicKey`. */
  verify(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean;
}

/** Key-value storage whose set() is atomic across power cuts. */
export interface StoragePort {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  delete(key: string): void;
}

export interface ClockPort {
  /** Wall clock, ms since the epoch (may be wrong before time sync). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Uniform in [0, 1), for backoff and poll jitter (seeded in simulations). */
  random(): number;
}

export interface RestartPort {
  /** Reboots the chip. On a board this never returns; simulators may return after scheduling the reboot. */
  restart(reason: string): void;
}

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface LogPort {
  log(level: LogLevel, message: string, fields?: Record<string, string | number | boolean | null>): void;
}

/** What the platform says about the running firmware's health (esp_reset_reason, esp_timer, heap_caps). */
export interface HealthPort {
  resetReason(): ResetReason;
  uptimeMs(): number;
  /** Bytes; null where the platform cannot tell. */
  freeHeap(): number | null;
  /** The free heap's low-water mark since start. */
  minFreeHeap(): number | null;
  /** The core dump a crash that caused this boot left in flash (ESP-IDF esp_core_dump_get_summary), if any. */
  coredump?(): CoredumpSummary | null;
}

export interface Ports {
  ota: OtaPort;
  http: HttpPort;
  /** Optional: without MQTT the agent polls. */
  mqtt?: MqttPort;
  hash: HashPort;
  /** The signature algorithms this build verifies (native where the platform has them). Absent: ed25519 only,
   * through hash.verifyEd25519 or tweetnacl. */
  verifiers?: readonly SignatureVerifier[];
  storage: StoragePort;
  clock: ClockPort;
  restart: RestartPort;
  log: LogPort;
  /** Optional: without it, health reports say reset reason "unknown" and no heap figures. */
  health?: HealthPort;
}

/** A raw data partition (the `agent` partition), for the power-safe journal behind StoragePort.
 * On the ESP32 this is embedded:storage/flash opened on the partition; in host-sim the simulated flash. */
export interface RawFlashPort {
  readonly size: number;
  /** Erase unit, 4096 on ESP32 NOR flash. */
  readonly sectorSize: number;
  read(offset: number, into: Uint8Array): void;
  write(offset: number, bytes: Uint8Array): void;
  eraseSector(index: number): void;
}
