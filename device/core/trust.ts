// Deciding whether a signed update manifest may touch this device's flash. Every check here runs before the
// first byte is erased; each failure carries the specific code the server receives.
import { base64Decode } from "../protocol/base64";
import {
  CHIP_ID_MAX, COMMAND_NAME_MAX, COMMANDS_MAX_COUNT, DEVICE_ID_MAX, DEVICE_MODEL_MAX, DOWNLOAD_URL_MAX, ENVELOPE_MAX_BYTES,
  FIRMWARE_ID_MAX, HARDWARE_VERSION_MAX, IMAGE_SIZE_MAX, KEY_ID_MAX, SECURE_VERSION_MAX, SIGNATURE_MAX, TIMESTAMP_MAX,
  UPDATE_ID_MAX, VERSION_MAX,
} from "../protocol/limits";
import type { SignedUpdateEnvelope, UpdateManifest } from "../protocol/manifest";
import { UPDATE_PRIORITIES } from "../protocol/manifest";
import { releaseSigningBytes, releaseStatementOf } from "../protocol/release";
import { isNewerVersion, parseVersion, versionInRange } from "../protocol/version";
import type { TrustedKey } from "./config";
import type { SignatureVerifier } from "./ports";
import type { AppliedRecord } from "./state";
import { UpdateError } from "./update-error";
import { ed25519Tweetnacl } from "./verifiers/ed25519-tweetnacl";
import { checkSignatureFields, verifyManifestSignatures } from "./verifiers/manifest-signatures";

/** Largest available-updates body the agent parses (limits.ts: the worst case the server can produce fits). */
export const MAX_ENVELOPE_BYTES = ENVELOPE_MAX_BYTES;

export interface DeviceFacts {
  deviceId: string;
  deviceModel: string;
  hardwareVersion: string;
  chipId: number;
  runningVersion: string;
  secureFloor: number;
  /** Manifests already consumed here (state.ts): a replay or an older manifest is refused. */
  applied: AppliedRecord;
  /** Size of the slot the image would be written to. */
  slotSize: number;
  nowMs: number;
  clockSkewMs: number;
  /** False before time sync: the validity window cannot be judged then. */
  clockTrusted: boolean;
  knownCommands: readonly string[];
}

/** Parses the body of GET available-updates; null when no update is offered. `onManifest` sees the manifest
 * object as soon as there is one, before the envelope's own checks (so a refusal can name the update). */
export function parseEnvelope(body: string, onManifest?: (manifest: Record<string, unknown>) => void): SignedUpdateEnvelope | null {
  if (body.length > MAX_ENVELOPE_BYTES) throw new UpdateError("MANIFEST_INVALID", `available-updates body of ${body.length} bytes is too large`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new UpdateError("MANIFEST_INVALID", "available-updates body is not JSON");
  }
  if (!isObject(parsed) || typeof parsed.update_available !== "boolean") {
    throw new UpdateError("MANIFEST_INVALID", "available-updates body has no boolean update_available");
  }
  if (!parsed.update_available) return null;
  if (!isObject(parsed.manifest)) throw new UpdateError("MANIFEST_INVALID", "envelope has no manifest object");
  onManifest?.(parsed.manifest);
  checkSignatureFields(parsed);
  return parsed as unknown as SignedUpdateEnvelope;
}

/** The manifest's signatures against the trusted keys (several, for rotation), with the verifiers of the accepted
 * algorithms (default: ed25519 through tweetnacl). */
export function verifySignature(env: SignedUpdateEnvelope, keys: readonly TrustedKey[], verifiers: readonly SignatureVerifier[] = [ed25519Tweetnacl]): void {
  verifyManifestSignatures(env, keys, verifiers);
}

/** Field types and bounds; a signed manifest from a buggy server is still refused. */
export function checkManifestShape(m: Record<string, unknown>): asserts m is Record<string, unknown> & UpdateManifest {
  const str = (k: string, max: number, nullable = false) => {
    const v = m[k];
    if (nullable && v === null) return;
    if (typeof v !== "string" || v.length === 0 || v.length > max) throw new UpdateError("MANIFEST_INVALID", `manifest.${k} must be a string of 1..${max} characters`);
  };
  const int = (k: string, min: number, max: number) => {
    const v = m[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new UpdateError("MANIFEST_INVALID", `manifest.${k} must be an integer in ${min}..${max}`);
  };
  const bool = (k: string) => {
    if (typeof m[k] !== "boolean") throw new UpdateError("MANIFEST_INVALID", `manifest.${k} must be a boolean`);
  };
  const commands = (k: string) => {
    const v = m[k];
    if (!Array.isArray(v) || v.length > COMMANDS_MAX_COUNT || v.some((c) => typeof c !== "string" || c.length === 0 || c.length > COMMAND_NAME_MAX)) {
      throw new UpdateError("MANIFEST_INVALID", `manifest.${k} must be a list of at most ${COMMANDS_MAX_COUNT} command names of 1..${COMMAND_NAME_MAX} characters`);
    }
  };
  int("manifest_version", 1, 1);
  str("update_id", UPDATE_ID_MAX);
  str("device_id", DEVICE_ID_MAX);
  str("firmware_id", FIRMWARE_ID_MAX);
  str("version", VERSION_MAX);
  if (!parseVersion(m.version as string)) throw new UpdateError("MANIFEST_INVALID", "manifest.version is not a version number");
  int("size", 1, IMAGE_SIZE_MAX);
  if (typeof m.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(m.sha256)) throw new UpdateError("MANIFEST_INVALID", "manifest.sha256 must be 64 lowercase hex digits");
  str("device_model", DEVICE_MODEL_MAX, true);
  str("min_hardware_version", HARDWARE_VERSION_MAX, true);
  str("max_hardware_version", HARDWARE_VERSION_MAX, true);
  if (m.chip_id !== null) int("chip_id", 0, CHIP_ID_MAX);
  int("secure_version", 0, SECURE_VERSION_MAX);
  for (const k of ["download_url", "fallback_url"]) {
    if (k === "fallback_url" && (m[k] === null || m[k] === undefined)) continue; // optional: a server without a CDN may leave it out
    str(k, DOWNLOAD_URL_MAX);
    if (!/^https?:\/\/[^\s]+$/.test(m[k] as string)) throw new UpdateError("MANIFEST_INVALID", `manifest.${k} must be an http(s) URL`);
  }
  str("issued_at", TIMESTAMP_MAX);
  str("expires_at", TIMESTAMP_MAX);
  if (Number.isNaN(Date.parse(m.issued_at as string)) || Number.isNaN(Date.parse(m.expires_at as string))) {
    throw new UpdateError("MANIFEST_INVALID", "manifest.issued_at/expires_at must be ISO 8601 times");
  }
  bool("rollback");
  bool("mandatory");
  if (!(UPDATE_PRIORITIES as readonly unknown[]).includes(m.priority)) throw new UpdateError("MANIFEST_INVALID", "manifest.priority is not a known priority");
  commands("pre_update_commands");
  commands("post_update_commands");
  // Absent (a server from before release signatures) reads as null.
  if (m.release_signature !== undefined) str("release_signature", SIGNATURE_MAX, true);
  if (m.release_key_id !== undefined) str("release_key_id", KEY_ID_MAX, true);
  if (m.delta !== undefined && m.delta !== null) checkDeltaShape(m.delta);
}

/** Release-key enforcement: the firmware team's signature over the image's release statement (release.ts), by a
 * release key this device trusts. The server signs the manifest, but cannot make this signature. */
export function verifyReleaseSignature(m: UpdateManifest, keys: readonly TrustedKey[], ed25519: SignatureVerifier = ed25519Tweetnacl): void {
  const fail = (why: string) => new UpdateError("RELEASE_SIGNATURE_INVALID", `release signature ${why}`);
  if (typeof m.release_signature !== "string" || typeof m.release_key_id !== "string") throw fail("missing: the image was not released by a trusted key");
  const key = keys.find((k) => k.keyId === m.release_key_id && (k.alg ?? "ed25519") === "ed25519");
  if (!key) throw fail(`by key ${m.release_key_id}, which this device does not trust`);
  let signature: Uint8Array;
  let message: Uint8Array;
  try {
    signature = base64Decode(m.release_signature);
    message = releaseSigningBytes(releaseStatementOf(m));
  } catch (e) {
    throw fail(`unreadable: ${(e as Error).message}`);
  }
  const publicKey = base64Decode(key.publicKey);
  if (signature.length !== ed25519.signatureLength || publicKey.length !== ed25519.publicKeyLength || !ed25519.verify(message, signature, publicKey)) {
    throw fail(`by ${m.release_key_id} does not cover this image's sha256, version, secure_version and model`);
  }
}

/** manifest.delta (DELTA.md): a patch's URL, size and SHA-256, and the SHA-256 of the image it starts from. */
function checkDeltaShape(d: unknown) {
  const ok = (v: unknown, re: RegExp, max: number) => typeof v === "string" && v.length <= max && re.test(v);
  const sha = /^[0-9a-f]{64}$/;
  if (!isObject(d) || Object.keys(d).some((k) => !["base_sha256", "patch_url", "patch_size", "patch_sha256"].includes(k))) {
    throw new UpdateError("MANIFEST_INVALID", "manifest.delta must be an object of base_sha256, patch_url, patch_size, patch_sha256");
  }
  const size = d.patch_size;
  if (!ok(d.base_sha256, sha, 64) || !ok(d.patch_sha256, sha, 64) || !ok(d.patch_url, /^https?:\/\/[^\s]+$/, DOWNLOAD_URL_MAX)
    || typeof size !== "number" || !Number.isInteger(size) || size < 1 || size > IMAGE_SIZE_MAX) {
    throw new UpdateError("MANIFEST_INVALID", "manifest.delta has a field of the wrong type or out of bounds");
  }
}

/** Everything a verified manifest must satisfy for this device, in the order the codes are most useful. */
export function checkApplicable(m: UpdateManifest, d: DeviceFacts): void {
  if (m.device_id !== d.deviceId) throw new UpdateError("MANIFEST_INVALID", `manifest is for device ${m.device_id}, not ${d.deviceId}`);
  // Both sides of the issued_at comparison are the server's clock, so the device's own skew does not enter;
  // equal times pass (a frozen server clock signs many manifests alike), the id ring catches the same update.
  if (d.applied.updateIds.includes(m.update_id)) throw new UpdateError("MANIFEST_REPLAYED", `update ${m.update_id} was already applied on this device`);
  if (Date.parse(m.issued_at) < d.applied.newestIssuedMs) {
    throw new UpdateError("MANIFEST_REPLAYED", `manifest issued at ${m.issued_at}, before the newest update this device applied`);
  }
  if (d.clockTrusted) {
    const issued = Date.parse(m.issued_at);
    const expires = Date.parse(m.expires_at);
    if (d.nowMs - d.clockSkewMs > expires) throw new UpdateError("MANIFEST_EXPIRED", `manifest expired at ${m.expires_at}`);
    if (d.nowMs + d.clockSkewMs < issued) throw new UpdateError("MANIFEST_INVALID", `manifest issued in the future (${m.issued_at})`);
  }
  if (m.device_model !== null && m.device_model !== d.deviceModel) {
    throw new UpdateError("INCOMPATIBLE_VERSION", `firmware is for model ${m.device_model}, this device is ${d.deviceModel}`);
  }
  if (!versionInRange(d.hardwareVersion, m.min_hardware_version, m.max_hardware_version)) {
    throw new UpdateError("INCOMPATIBLE_VERSION", `hardware ${d.hardwareVersion} is outside ${m.min_hardware_version ?? "*"}..${m.max_hardware_version ?? "*"}`);
  }
  if (m.chip_id !== null && m.chip_id !== d.chipId) throw new UpdateError("INCOMPATIBLE_VERSION", `firmware is for chip id ${m.chip_id}, this chip is ${d.chipId}`);
  if (!m.rollback && !isNewerVersion(m.version, d.runningVersion)) {
    throw new UpdateError("DOWNGRADE_REJECTED", `version ${m.version} is not newer than the running ${d.runningVersion}`);
  }
  if (m.secure_version < d.secureFloor) {
    throw new UpdateError("SECURE_VERSION_REJECTED", `secure_version ${m.secure_version} is below this device's floor ${d.secureFloor}`);
  }
  if (m.size > d.slotSize) throw new UpdateError("INSUFFICIENT_SPACE", `image of ${m.size} bytes does not fit the ${d.slotSize}-byte slot`);
  for (const c of [...m.pre_update_commands, ...m.post_update_commands]) {
    if (!d.knownCommands.includes(c)) throw new UpdateError("UNKNOWN_COMMAND", `no hook for update command "${c}"`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
