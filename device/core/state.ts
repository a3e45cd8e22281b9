// The update state machine's persisted state. It is written before every side effect (Mender's rule), so
// whatever instant power fails, the next boot finds out what was under way and resumes or rolls back.
import type { UpdateManifest } from "../protocol/manifest";
import type { DeviceErrorCode } from "../protocol/errors";
import type { StoragePort } from "./ports";

export type Phase =
  /** Nothing under way. */
  | "idle"
  /** The manifest passed every check; the slot is being erased and written. */
  | "downloading"
  /** The image is verified; set_boot_partition and the restart come next. */
  | "switching"
  /** Running the new image in PENDING_VERIFY: the self-test decides. */
  | "verifying"
  /** The self-test failed; marking invalid and restarting into the old image. */
  | "rolling_back";

export interface UpdateState {
  phase: Phase;
  manifest?: UpdateManifest;
  /** Label of the slot being written / switched to. */
  targetSlot?: string;
  /** Label and version that ran when the update started (to report from/to and detect a rollback). */
  fromSlot?: string;
  fromVersion?: string;
  /** Bytes of the image durably in flash (a multiple of 4096 until the end). */
  offset?: number;
  downloadAttempts?: number;
  /** Boot counter value when the self-test started: set means the new image reached the self-test. */
  selfTestStartedAt?: number;
  /** Why the new image is being rolled back (set by the new image before it marks itself invalid). */
  rollbackReason?: { code: DeviceErrorCode; message: string };
  /** Switching without a download: a rollback to what the other slot already holds. */
  slotSwitchOnly?: boolean;
}

const STATE_KEY = "ota.state";
const FLOOR_KEY = "ota.secure_floor";
const BOOTS_KEY = "ota.boots";

export class StateStore {
  constructor(private readonly storage: StoragePort) {}

  load(): UpdateState {
    const raw = this.storage.get(STATE_KEY);
    if (!raw) return { phase: "idle" };
    try {
      return JSON.parse(raw) as UpdateState;
    } catch {
      return { phase: "idle" }; // never block updates forever on unreadable state
    }
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

  /** Counts agent starts; stored so a marker can say "this happened in boot n". */
  nextBoot(): number {
    const n = (Number(this.storage.get(BOOTS_KEY) ?? 0) || 0) + 1;
    this.storage.set(BOOTS_KEY, String(n));
    return n;
  }
}
