// Boot recovery as a table: every combination of persisted phase, running slot (target or not), running
// image state and target slot state is enumerated, and the decision must equal the row of the table below
// that matches it first — the table is the specification, written independently of decideBoot's branches.
// Safety rules that must hold whatever the table says are checked on every combination too.
import { describe, expect, it } from "vitest";
import type { ImageState } from "../device/core/ports";
import type { BootAction, BootFacts } from "../device/core/recovery";
import { decideBoot } from "../device/core/recovery";
import type { UpdateState } from "../device/core/state";
import type { UpdateManifest } from "../device/protocol/manifest";

const IMAGE_STATES: ImageState[] = ["new", "pending_verify", "valid", "invalid", "aborted", "undefined", "none"];
const TRIAL: ImageState[] = ["new", "pending_verify"];
const manifest = { update_id: "u-1", version: "1.1.0" } as UpdateManifest;
const ref = { manifest, targetSlot: "ota_1", fromVersion: "1.0.0" };
const STATES: UpdateState[] = [
  { phase: "idle" },
  { phase: "downloading", ...ref, offset: 65536, downloadAttempts: 1 },
  { phase: "switching", ...ref },
  { phase: "verifying", ...ref },
  { phase: "rolling_back", ...ref, rollbackReason: { code: "TIMEOUT", message: "self-test did not pass" } },
];

type Slot = { label: string };
const TARGET: Slot = { label: "ota_1" };

function* everyCombination(): Generator<BootFacts<Slot>> {
  for (const state of STATES) {
    for (const running of IMAGE_STATES) {
      if (state.phase === "idle") {
        yield { state, running, onTarget: false, target: null };
        continue;
      }
      yield { state, running, onTarget: true, target: null };
      yield { state, running, onTarget: false, target: null };
      for (const t of IMAGE_STATES) yield { state, running, onTarget: false, target: { slot: TARGET, state: t } };
    }
  }
}

const any = "*" as const;
type Match<T> = T | readonly T[] | typeof any;
interface Row {
  phase: Match<UpdateState["phase"]>;
  onTarget: Match<boolean>;
  running: Match<ImageState>;
  /** "missing" = the target label names no slot. */
  target: Match<ImageState | "missing">;
  expect: BootAction<Slot>["do"];
  code?: string;
}

// prettier-ignore
const TABLE: Row[] = [
  { phase: "idle",         onTarget: any,   running: TRIAL, target: any,       expect: "self-test" },
  { phase: "idle",         onTarget: any,   running: any,   target: any,       expect: "carry-on" },
  { phase: "downloading",  onTarget: true,  running: any,   target: any,       expect: "abandon" },
  { phase: "downloading",  onTarget: false, running: any,   target: "missing", expect: "abandon" },
  { phase: "downloading",  onTarget: false, running: TRIAL, target: any,       expect: "abandon" },
  { phase: "downloading",  onTarget: false, running: any,   target: any,       expect: "resume-download" },
  { phase: "rolling_back", onTarget: true,  running: any,   target: any,       expect: "roll-back" },
  { phase: any,            onTarget: true,  running: "valid", target: any,     expect: "confirmed" },
  { phase: any,            onTarget: true,  running: ["new", "pending_verify", "undefined", "none"], target: any, expect: "self-test" },
  { phase: any,            onTarget: true,  running: ["invalid", "aborted"], target: any, expect: "roll-back" },
  { phase: "verifying",    onTarget: false, running: any,   target: any,       expect: "report-rollback", code: "SELF_TEST_FAILED" },
  { phase: "rolling_back", onTarget: false, running: any,   target: any,       expect: "report-rollback", code: "TIMEOUT" },
  { phase: "switching",    onTarget: false, running: any,   target: "missing", expect: "abandon" },
  { phase: "switching",    onTarget: false, running: any,   target: ["valid", "undefined", "none"], expect: "switch" },
  { phase: "switching",    onTarget: false, running: any,   target: TRIAL,     expect: "report-rollback", code: "IMAGE_INVALID" },
  { phase: "switching",    onTarget: false, running: any,   target: ["invalid", "aborted"], expect: "report-rollback", code: "SELF_TEST_FAILED" },
];

function matches<T>(m: Match<T>, v: T): boolean {
  return m === any || (Array.isArray(m) ? (m as readonly T[]).includes(v) : m === v);
}

function rowFor(f: BootFacts<Slot>): Row | undefined {
  const target = f.target ? f.target.state : "missing";
  return TABLE.find((r) => matches(r.phase, f.state.phase) && matches(r.onTarget, f.onTarget) && matches(r.running, f.running) && matches(r.target, target));
}

const label = (f: BootFacts<Slot>) => `${f.state.phase} onTarget=${f.onTarget} running=${f.running} target=${f.target?.state ?? "missing"}`;

describe("boot recovery decision", () => {
  const all = [...everyCombination()];

  it("enumerates every combination (7 idle + 4 phases × 7 running states × 9 slot situations)", () => {
    expect(all.length).toBe(7 + 4 * 7 * 9);
  });

  it("decides every combination as its table row says", () => {
    const wrong: string[] = [];
    for (const f of all) {
      const row = rowFor(f);
      const action = decideBoot(f);
      if (!row) wrong.push(`${label(f)}: no table row`);
      else if (action.do !== row.expect) wrong.push(`${label(f)}: ${action.do}, table says ${row.expect}`);
      else if (row.code && "reason" in action && action.reason.code !== row.code) wrong.push(`${label(f)}: code ${action.reason.code}, table says ${row.code}`);
    }
    expect(wrong).toEqual([]);
  });

  it("every table row is reached by some combination", () => {
    const used = new Set(all.map((f) => rowFor(f)));
    expect(TABLE.filter((r) => !used.has(r))).toEqual([]);
  });

  it("holds the safety rules on every combination", () => {
    const broken: string[] = [];
    for (const f of all) {
      const a = decideBoot(f);
      const rule = (ok: boolean, what: string) => ok || broken.push(`${label(f)} → ${a.do}: ${what}`);
      // Writing or booting a slot: never the running one, never one the bootloader already gave up on.
      if (a.do === "resume-download" || a.do === "switch") rule(!f.onTarget && f.target !== null, "touches a slot that is missing or running");
      if (a.do === "switch") rule(f.target !== null && ["valid", "undefined", "none"].includes(f.target.state), "makes bootable a slot the bootloader refused");
      // Only an image on trial (or untracked, rollback off) is tested; a valid one is never put back on trial.
      if (a.do === "self-test") rule(TRIAL.includes(f.running) || (f.onTarget && ["undefined", "none"].includes(f.running)), "self-tests an image not on trial");
      if (a.do === "confirmed") rule(f.onTarget && f.running === "valid", "reports completed for an image that is not the confirmed target");
      if (a.do === "roll-back") rule(f.onTarget, "rolls back an image the update did not install");
      if (a.do === "report-rollback") rule(!f.onTarget, "reports rolled_back while the new image runs");
      // Nothing under way: nothing to report.
      if (f.state.phase === "idle") rule(a.do === "carry-on" || a.do === "self-test", "acts on an update that does not exist");
      if ("update" in a && a.update) rule(a.update === f.state, "acts on another state than the persisted one");
    }
    expect(broken).toEqual([]);
  });
});
