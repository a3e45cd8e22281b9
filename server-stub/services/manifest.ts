import { manifestSigningBytes, MANIFEST_VERSION, SIGNATURE_ALGORITHM, type DeltaOffer, type SignedUpdateEnvelope, type UpdateManifest } from "../../device/protocol";
import type { Ctx } from "../context";
import { json } from "../db";
import { downloadUrl } from "../model/firmware";
import type { CheckFirmware, CheckUpdate } from "./check-snapshot";

/** This server's base URL for a device: the configured public URL, else the address the device reached (`reached`,
 * e.g. http://192.168.1.10:8221), else the default. */
export function serverBaseFor(ctx: Ctx, reached: string | null): string {
  return ctx.config.publicUrlConfigured || !reached ? ctx.config.publicUrl : reached;
}

/** The CDN's URL first and a fallback (the CDN's own, or this server) when a CDN is on; this server alone otherwise. */
function downloadUrls(ctx: Ctx, firmwareId: string, base: string): Pick<UpdateManifest, "download_url" | "fallback_url"> {
  const origin = downloadUrl(base, firmwareId);
  const cdn = ctx.config.cdn;
  if (!cdn) return { download_url: origin, fallback_url: null };
  return { download_url: downloadUrl(cdn.base_url, firmwareId), fallback_url: cdn.fallback_url ? downloadUrl(cdn.fallback_url, firmwareId) : origin };
}

/** How long the same signed manifest answers an update's checks again: signing (two signatures) costs more than the
 * rest of a check, and a device that polls again within this gets identical bytes (the same issued_at). */
export const MANIFEST_REUSE_MAX_MS = 60_000;
const CACHE_MAX = 10_000;

interface CachedManifest {
  /** Everything the manifest is made of but the time, and the signing keys' ids: any change re-signs. */
  basis: string;
  issuedAt: number;
  envelope: SignedUpdateEnvelope;
}

/** Per key store, i.e. per server (tests run several in one process). */
const caches = new WeakMap<object, Map<string, CachedManifest>>();

/** The signed manifest of an assigned update: the one signed less than a minute (at most a tenth of the TTL) ago when
 * neither its content nor the signing keys (`signers`, their ids as the check read them) changed since, else a
 * freshly signed one. The same object while reused, so the route can reuse its serialized form too. */
export function signedManifest(ctx: Ctx, u: CheckUpdate, fw: CheckFirmware, delta: DeltaOffer | null, reached: string | null, signers: string): SignedUpdateEnvelope {
  const now = ctx.clock.now();
  // The inputs of manifestAt rather than its output: building and serializing a whole manifest per check cost more.
  const urls = downloadUrls(ctx, fw.firmware_id, serverBaseFor(ctx, reached));
  const basis = JSON.stringify([u, fw, delta, urls, ctx.config.manifestTtlSeconds, signers]);
  let cache = caches.get(ctx.keys);
  if (!cache) caches.set(ctx.keys, (cache = new Map()));
  const hit = cache.get(u.update_id);
  const reuseMs = Math.min(MANIFEST_REUSE_MAX_MS, ctx.config.manifestTtlSeconds * 100);
  if (hit && hit.basis === basis && now >= hit.issuedAt && now - hit.issuedAt < reuseMs) return hit.envelope;
  const envelope = signFresh(ctx, manifestAt(ctx, u, fw, delta, now, reached));
  cache.delete(u.update_id); // re-inserted last: the oldest entries go first when the cache is full
  cache.set(u.update_id, { basis, issuedAt: now, envelope });
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value!);
  return envelope;
}

function manifestAt(ctx: Ctx, u: CheckUpdate, fw: CheckFirmware, delta: DeltaOffer | null, now: number, reached: string | null): UpdateManifest {
  return {
    manifest_version: MANIFEST_VERSION,
    update_id: u.update_id,
    device_id: u.device_id,
    firmware_id: fw.firmware_id,
    version: fw.version,
    size: fw.file_size,
    sha256: fw.checksum_sha256,
    device_model: fw.device_model,
    min_hardware_version: fw.min_hardware_version,
    max_hardware_version: fw.max_hardware_version,
    chip_id: fw.chip_id,
    secure_version: fw.secure_version,
    ...downloadUrls(ctx, fw.firmware_id, serverBaseFor(ctx, reached)),
    issued_at: new Date(now).toISOString(),
    expires_at: new Date(now + ctx.config.manifestTtlSeconds * 1000).toISOString(),
    rollback: u.rollback === 1,
    mandatory: u.mandatory === 1,
    priority: u.priority,
    pre_update_commands: json.parse<string[]>(u.pre_update_commands, []),
    post_update_commands: json.parse<string[]>(u.post_update_commands, []),
    release_signature: fw.release_signature ?? null,
    release_key_id: fw.release_key_id ?? null,
    delta,
  };
}

function signFresh(ctx: Ctx, manifest: UpdateManifest): SignedUpdateEnvelope {
  const signatures = ctx.keys.signAll(manifestSigningBytes(manifest));
  // The legacy fields repeat the ed25519 signature, for devices from before `signatures`.
  const legacy = signatures.find((s) => s.alg === SIGNATURE_ALGORITHM)!;
  // Frozen: reused for a minute, and the route caches its serialized form by identity (routes/check-answer.ts).
  return Object.freeze({ update_available: true, manifest: Object.freeze(manifest), signatures, signature: legacy.sig, key_id: legacy.key_id, signature_alg: SIGNATURE_ALGORITHM });
}
