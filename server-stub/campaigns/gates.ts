// Promotion gates: asked before a campaign moves from a finished (and soaked) stage to the next one.
// The failure-rate stage gate is built into the engine; other rules (device health over the soak window)
// register here. With none registered every stage passes.
import type { Ctx } from "../context";
import type { CampaignConfig } from "./config";
import type { CampaignRow, StageRow } from "./model";

export type GateVerdict =
  | { verdict: "pass" }
  /** Not enough evidence yet: hold the next stage and ask again on the next tick. */
  | { verdict: "wait"; reason: string }
  /** Stop: the campaign pauses (and rolls back with auto_rollback) as for a failed stage gate. */
  | { verdict: "fail"; reason: string };

export interface PromotionGate {
  name: string;
  check(ctx: Ctx, c: CampaignRow, cfg: CampaignConfig, stage: StageRow, now: number): GateVerdict;
}

/** The first verdict that is not a pass, with the gate that gave it; a pass when every gate passes. */
export function promotionVerdict(gates: readonly PromotionGate[], ctx: Ctx, c: CampaignRow, cfg: CampaignConfig, stage: StageRow, now: number): GateVerdict & { gate?: string } {
  for (const g of gates) {
    const v = g.check(ctx, c, cfg, stage, now);
    if (v.verdict !== "pass") return { ...v, gate: g.name };
  }
  return { verdict: "pass" };
}
