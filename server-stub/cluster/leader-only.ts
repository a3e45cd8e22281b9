// The engine and the webhook dispatcher, run only by the leader (leadership.ts). Followers still serve every route;
// a tick a follower's service asks for (startCampaign) is passed on to the leader.
import type { Logger } from "pino";
import type { Clock } from "../clock";
import type { Ctx } from "../context";
import type { Db } from "../db";
import { CampaignEngine } from "../campaigns/engine";
import type { PromotionGate } from "../campaigns/gates";
import { WebhookDispatcher, type DispatchOptions } from "../events/dispatcher";
import type { Leadership } from "./leadership";

export class LeaderEngine extends CampaignEngine {
  /** `passOn`: asks the leader for a tick (a notification on PostgreSQL). */
  constructor(ctx: Ctx, gates: readonly PromotionGate[], private readonly leadership: Leadership, private readonly passOn: () => void) {
    super(ctx, gates);
  }

  /** A tick someone asked for: run here when leading, else by the leader. */
  override tick(): void {
    if (this.leadership.check()) super.tick();
    else this.passOn();
  }

  /** The periodic tick: followers have nothing to do. */
  tickIfLeader(): void {
    if (this.leadership.check()) super.tick();
  }
}

/** One deliverer for the whole fleet, which is what keeps each lane's order. */
export class LeaderWebhooks extends WebhookDispatcher {
  constructor(db: Db, clock: Clock, log: Logger, opts: DispatchOptions, private readonly leadership: Leadership) {
    super(db, clock, log, opts);
  }

  override wake(): void {
    if (this.leadership.check()) super.wake();
  }
}
