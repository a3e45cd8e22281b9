// What to do at boot, decided from facts alone: the persisted state, the running slot's otadata state, and
// the state of the slot the update targets. A pure function, so every combination is tested as a table
// (test/recovery.test.ts) and the agent only carries the decision out. Each action carries the phase it
// applies to, so carrying it out needs no second guess about the state.
import type { ImageState } from "./ports";
import type { ActiveUpdate, Downloading, Failure, Switching, UpdateState } from "./state";

export interface BootFacts<S> {
  /** What the journal says was under way. */
  state: UpdateState;
  /** The running slot's otadata state. */
  running: ImageState;
  /** The running slot is the update's target. */
  onTarget: boolean;
  /** The update's target slot when it is not the running one; null in idle, on target, or when its label
   * names no slot of this partition table. */
  target: { slot: S; state: ImageState } | null;
}

export type BootAction<S> =
  /** Nothing under way: deliver queued reports and wait for triggers. */
  | { do: "carry-on" }
  /** The running image is on trial: pass the self-test and confirm, or roll back. `update` is null when
   * something other than the agent (a tool) switched slots. */
  | { do: "self-test"; update: ActiveUpdate | null }
  /** A download was under way: resume it from the durable offset. */
  | { do: "resume-download"; update: Downloading }
  /** The verified image was never made bootable (power failed before set_boot_partition): switch now. */
  | { do: "switch"; update: Switching; slot: S }
  /** The new image was confirmed, but power failed before the state said so: report completed. */
  | { do: "confirmed"; update: ActiveUpdate }
  /** The running new image failed: mark it invalid and restart into the old one. */
  | { do: "roll-back"; update: ActiveUpdate; reason: Failure }
  /** The old image runs again after the new one failed: report why. */
  | { do: "report-rollback"; update: ActiveUpdate; reason: Failure }
  /** The persisted update cannot go on (its slot is gone, or it would write the running slot): report it failed. */
  | { do: "abandon"; update: ActiveUpdate; message: string };

/** States in which the bootloader runs an image that has yet to prove itself. */
const ON_TRIAL: readonly ImageState[] = ["new", "pending_verify"];
/** States a slot has when otadata does not track it (rollback off, or no entry yet). */
const UNTRACKED: readonly ImageState[] = ["undefined", "none"];

export function decideBoot<S>(f: BootFacts<S>): BootAction<S> {
  const s = f.state;
  if (s.phase === "idle") return ON_TRIAL.includes(f.running) ? { do: "self-test", update: null } : { do: "carry-on" };

  if (s.phase === "downloading") {
    if (f.onTarget) return { do: "abandon", update: s, message: "the download targets the slot this device runs from" };
    if (!f.target) return { do: "abandon", update: s, message: "the download's target slot is not in the partition table" };
    // An unconfirmed running image comes first; the server offers the download again once it is settled.
    if (ON_TRIAL.includes(f.running)) return { do: "abandon", update: s, message: "the running image is itself unconfirmed" };
    return { do: "resume-download", update: s };
  }

  if (f.onTarget) {
    // Decided before the restart: carry it out.
    if (s.phase === "rolling_back") return { do: "roll-back", update: s, reason: s.rollbackReason };
    if (f.running === "valid") return { do: "confirmed", update: s };
    if (ON_TRIAL.includes(f.running) || UNTRACKED.includes(f.running)) return { do: "self-test", update: s };
    // Invalid or aborted, yet running (the bootloader never boots those): restart out of it.
    return { do: "roll-back", update: s, reason: { code: "SELF_TEST_FAILED", message: `the new image runs in state ${f.running}` } };
  }

  // The old image runs.
  if (s.phase === "verifying") {
    return { do: "report-rollback", update: s, reason: { code: "SELF_TEST_FAILED", message: "new image restarted during its self-test (crash, watchdog or power loss) and was rolled back" } };
  }
  if (s.phase === "rolling_back") return { do: "report-rollback", update: s, reason: s.rollbackReason };
  if (!f.target) return { do: "abandon", update: s, message: "the update's target slot is not in the partition table" };
  const t = f.target.state;
  // Power failed before set_boot_partition took: the image was verified before "switching" was persisted.
  if (t === "valid" || UNTRACKED.includes(t)) return { do: "switch", update: s, slot: f.target.slot };
  if (ON_TRIAL.includes(t)) return { do: "report-rollback", update: s, reason: { code: "IMAGE_INVALID", message: "the bootloader could not load the new image and kept the old one" } };
  return { do: "report-rollback", update: s, reason: { code: "SELF_TEST_FAILED", message: "new image crashed before its self-test; the bootloader rolled back" } };
}
