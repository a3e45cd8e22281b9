// The update state machine's persisted state. It is written before every side effect (Mender's rule), so
// whatever instant power fails, the next boot finds out what was under way and resumes or rolls back
// (recovery.ts decides how). Each phase carries only the fields that are valid in it.
//
//   idle ──check: manifest trusted──▶ downloading ──image verified──▶ switching ──set_boot, restart──▶ verifying
//     ▲                                   │ (refused, failed, cancelled)                                │    │
//     └───────────────────────────────────┘◀── completed (confirmed) ───────────────────────────────────┘    │
//     ▲                                                                         self-test failed or deadline ▼
//     └──────────── the old image reports rolled_back ◀── restart into the old slot ◀──────────── rolling_back
import type { DeviceErrorCode } from "../protocol/errors";
import { isDeviceErrorCode } from "../protocol/errors";
import type { PatchPosition } from "../protocol/delta";
import type { UpdateManifest } from "../protocol/manifest";
import type { StoragePort } from "./ports";

/** What every phase of an update knows: the trusted manifest, the slot it goes to, what ran before. */
export interface UpdateRef {
  manifest: UpdateManifest;
  /** Label of the slot being written / switched to. */
  targetSlot: string;
  /** Version that ran when the update started (reported as from_version). */
  fromVersion: string | null;
}

export interface Failure {
  code: DeviceErrorCode;
  message: string;
}

export interface Idle {
  phase: "idle";
}

/** The manifest passed every check; the slot is being erased and written. */
export interface Downloading extends UpdateRef {
  phase: "downloading";
  /** Bytes of the image durably in flash (a multiple of 4096 until the end). */
  offset: number;
  /** Failed attempts in a row, carried across reboots. */
  downloadAttempts: number;
  /** Present when the image is rebuilt from a delta patch (manifest.delta): where the patch stands at `offset`. */
  delta?: PatchPosition | undefined;
}

/** The image is verified (or, for a rollback, the other slot holds it); set_boot_partition and the restart come next. */
export interface Switching extends UpdateRef {
  phase: "switching";
}

/** The new image runs in PENDING_VERIFY and its self-test has started: it confirms, or rolls back. */
export interface Verifying extends UpdateRef {
  phase: "verifying";
}

/** The new image failed; it marks itself invalid and restarts into the old one, which reports `reason`. */
export interface RollingBack extends UpdateRef {
  phase: "rolling_back";
  rollbackReason: Failure;
}

export type UpdateState = Idle | Downloading | Switching | Verifying | RollingBack;
export type Phase = UpdateState["phase"];
export type ActiveUpdate = Exclude<UpdateState, Idle>;

export const IDLE: Idle = { phase: "idle" };

const STATE_KEY = "ota.state";
const FLOOR_KEY = "ota.secure_floor";
const BOOTS_KEY = "ota.boots";
const APPLIED_KEY = "ota.applied";
const TRUST_KEY = "ota.trust";
const DEFERRED_KEY = "ota.deferred";
/** Update ids remembered as applied. Older ones are still refused by the issued_at floor, so a few suffice;
 * at most 8 × 64 characters, as every journal commit rewrites the whole map. */
export const APPLIED_IDS_MAX = 8;

/** What this device has applied: manifests it may never accept again (trust.ts refuses them). */
export interface AppliedRecord {
  /** issued_at (epoch ms) of the newest manifest applied; 0 before the first. */
  newestIssuedMs: number;
  /** The last APPLIED_IDS_MAX update ids applied, oldest first. */
  updateIds: string[];
}

export class StateStore {
  constructor(private readonly storage: StoragePort) {}

  load(): UpdateState {
    const raw = this.storage.get(STATE_KEY);
    return raw ? decodeState(raw) : IDLE;
  }

  save(state: UpdateState) {
    this.storage.set(STATE_KEY, JSON.stringify(state));
  }

  /** The anti-rollback floor: the secure_version of the newest image this device confirmed. */
  secureFloor(): number {
    return Number(this.storage.get(FLOOR_KEY) ?? 0) || 0;
  }

  raiseSecureFloor(v: number) {
    if (v > this.secureFloor()) this.storage.set(FLOOR_KEY, String(v));
  }

  applied(): AppliedRecord {
    const raw = this.storage.get(APPLIED_KEY);
    if (!raw) return { newestIssuedMs: 0, updateIds: [] };
    try {
      const o = JSON.parse(raw) as { t?: unknown; ids?: unknown };
      const ids = Array.isArray(o.ids) ? o.ids.filter((x): x is string => typeof x === "string") : [];
      return { newestIssuedMs: typeof o.t === "number" && o.t > 0 ? o.t : 0, updateIds: ids };
    } catch {
      // Unreadable: refuse nothing rather than everything (the journal's CRC makes this a bug, not wear).
      return { newestIssuedMs: 0, updateIds: [] };
    }
  }

  /** Marks a trusted manifest as consumed. Called once the agent commits to it, before its first side effect. */
  recordApplied(m: UpdateManifest) {
    const a = this.applied();
    const ids = a.updateIds.filter((id) => id !== m.update_id);
    ids.push(m.update_id);
    const t = Math.max(a.newestIssuedMs, Date.parse(m.issued_at) || 0);
    this.storage.set(APPLIED_KEY, JSON.stringify({ t, ids: ids.slice(-APPLIED_IDS_MAX) }));
  }

  /** When the application first deferred update `updateId` (device clock, ms), if it did. */
  deferredSince(updateId: string): number | undefined {
    const raw = this.storage.get(DEFERRED_KEY);
    if (!raw) return undefined;
    try {
      const o = JSON.parse(raw) as { id?: unknown; t?: unknown };
      return o.id === updateId && typeof o.t === "number" && Number.isFinite(o.t) ? o.t : undefined;
    } catch {
      return undefined;
    }
  }

  /** One record, for the latest deferred update only (≤ 64-character id and a time), written at its first
   * deferral and not on every check that defers it again: the maximum deferral outlives a reboot at the cost
   * of one journal commit per deferred update. */
  recordDeferral(updateId: string, at: number) {
    this.storage.set(DEFERRED_KEY, JSON.stringify({ id: updateId, t: at }));
  }

  /** The trusted key set a signed key list installed (release-keys.ts encodes it); undefined = the baked-in keys.
   * One journal commit: a power cut leaves the old set or the new one, never a mix. */
  trustedKeySet(): string | undefined {
    return this.storage.get(TRUST_KEY);
  }

  saveTrustedKeySet(encoded: string) {
    this.storage.set(TRUST_KEY, encoded);
  }

  /** Counts agent starts (for the log: "this happened in boot n"). */
  nextBoot(): number {
    const n = (Number(this.storage.get(BOOTS_KEY) ?? 0) || 0) + 1;
    this.storage.set(BOOTS_KEY, String(n));
    return n;
  }
}

/** Parses a stored state, checking each phase has its fields; anything unreadable is idle, so a damaged
 * record can never block updates forever (the boot decision still sees the slots' real states). */
export function decodeState(raw: string): UpdateState {
  let o: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== "object" || parsed === null) return IDLE;
    o = parsed as Record<string, unknown>;
  } catch {
    return IDLE;
  }
  const m = o.manifest as Partial<UpdateManifest> | undefined;
  if (o.phase === "idle" || typeof m !== "object" || m === null || typeof m.update_id !== "string" || typeof o.targetSlot !== "string") return IDLE;
  const ref: UpdateRef = { manifest: m as UpdateManifest, targetSlot: o.targetSlot, fromVersion: typeof o.fromVersion === "string" ? o.fromVersion : null };
  switch (o.phase) {
    case "downloading":
      return { phase: "downloading", ...ref, offset: count(o.offset), downloadAttempts: count(o.downloadAttempts), delta: patchPosition(o.delta) };
    case "switching":
    case "verifying":
      return { phase: o.phase, ...ref };
    case "rolling_back": {
      const r = o.rollbackReason as Partial<Failure> | undefined;
      const reason: Failure =
        r && typeof r.code === "string" && isDeviceErrorCode(r.code) && typeof r.message === "string" ? { code: r.code, message: r.message } : { code: "SELF_TEST_FAILED", message: "self-test failed" };
      return { phase: "rolling_back", ...ref, rollbackReason: reason };
    }
    default:
      return IDLE;
  }
}

function patchPosition(v: unknown): PatchPosition | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const p = v as Record<string, unknown>;
  return { patchOffset: count(p.patchOffset), opKind: count(p.opKind), opLeft: count(p.opLeft), oldAt: count(p.oldAt) };
}

function count(v: unknown): number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : 0;
}
