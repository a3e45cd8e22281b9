// The update agent: boot recovery first (recovery.ts decides, this file carries it out), then the triggers.
// Platform-free: it sees the world only through ports.ts, fenced by its lifetime (guard.ts).
//   triggers.ts      poll, MQTT, checkNow()      update-client.ts  every call to the server
//   installer.ts     trust, download, switch     self-test.ts      prove the new image, confirm or roll back
//   state.ts         the persisted phases        recovery.ts       what to do at boot, as a pure function
import type { DeviceErrorCode } from "../protocol/errors";
import type { AgentConfig, ResolvedConfig } from "./config";
import { resolveConfig } from "./config";
import { AgentContext } from "./context";
import { guardPorts } from "./guard";
import { Installer } from "./installer";
import type { Ports, Slot } from "./ports";
import type { BootAction, BootFacts } from "./recovery";
import { decideBoot } from "./recovery";
import { finishCompleted, proveRunningImage, rollBack } from "./self-test";
import { Controller } from "./signal";
import type { UpdateState } from "./state";
import { IDLE } from "./state";
import { Triggers } from "./triggers";

export type CheckOutcome =
  | { result: "none" }
  | { result: "busy" }
  | { result: "unreachable"; message: string }
  | { result: "failed"; code: DeviceErrorCode; message: string; updateId?: string | undefined }
  | { result: "restarting"; updateId: string };

/** What start() found and did at boot. */
export type BootOutcome = "normal" | "confirmed" | "rolled-back-reported" | "self-test-failed" | "resumed-download" | "restarting";

export class Agent {
  readonly config: ResolvedConfig;
  private readonly ctx: AgentContext;
  private readonly installer: Installer;
  private readonly triggers: Triggers;
  private busy: Promise<CheckOutcome> | null = null;

  constructor(config: AgentConfig, ports: Ports) {
    this.config = resolveConfig(config);
    const life = new Controller();
    this.ctx = new AgentContext(guardPorts(ports, life.signal), this.config, life);
    this.installer = new Installer(this.ctx);
    this.triggers = new Triggers(this.ctx, { check: () => this.checkNow(), cancel: (id) => this.installer.cancel(id) });
  }

  get phase() {
    return this.ctx.state.load().phase;
  }

  get isStopped() {
    return this.ctx.lifetime.aborted;
  }

  /** Boot handling first (confirm, roll back, resume), then the triggers. */
  async start(options: { poll?: boolean; mqtt?: boolean } = {}): Promise<BootOutcome> {
    const outcome = await this.recover(this.ctx.state.nextBoot());
    if (!this.isStopped && outcome !== "restarting") await this.ctx.health.start(() => void this.checkNow());
    if (!this.isStopped) this.triggers.start(options);
    return outcome;
  }

  /** Ends this agent: timers stop, and nothing still in flight may write flash, persist or report. */
  async stop() {
    this.ctx.stop("stopped");
  }

  /** One check-and-update cycle; concurrent triggers share the running one. */
  checkNow(): Promise<CheckOutcome> {
    if (this.isStopped) return Promise.resolve({ result: "busy" });
    if (!this.busy) this.busy = this.installer.checkAndInstall().finally(() => (this.busy = null));
    return this.busy;
  }

  /** Carries out the boot decision; the actions that settle the journal (report, abandon) decide again. */
  private async recover(boot: number): Promise<BootOutcome> {
    const { ctx } = this;
    let settled: BootOutcome | null = null;
    for (let round = 0; round < 3; round++) {
      const s = ctx.state.load();
      const facts = this.bootFacts(s);
      const action = decideBoot(facts);
      ctx.ports.log.log("info", "agent start", { boot, phase: s.phase, running: ctx.ports.ota.running().label, state: facts.running, action: action.do });
      const done = await this.act(action);
      if (done !== "again") return done === "normal" && settled ? settled : done;
      settled = this.settledOutcome(action) ?? settled;
    }
    throw new Error("boot recovery did not settle"); // unreachable: a settling action always leaves idle
  }

  private async act(action: BootAction<Slot>): Promise<BootOutcome | "again"> {
    const { ctx } = this;
    switch (action.do) {
      case "carry-on":
        await ctx.outbox.flush();
        return "normal";
      case "self-test":
        return proveRunningImage(ctx, action.update);
      case "resume-download": {
        const outcome = await this.installer.download(action.update);
        return outcome.result === "restarting" ? "restarting" : "resumed-download";
      }
      case "switch": {
        const outcome = await this.installer.switchTo(action.update, action.slot);
        return outcome.result === "restarting" ? "restarting" : "normal";
      }
      case "confirmed":
        finishCompleted(ctx, action.update);
        return "again";
      case "roll-back":
        return rollBack(ctx, action.update, action.reason);
      case "report-rollback": {
        const u = action.update;
        // How the rejected image ended: this boot's reset reason (a crash, or "software" after a failed self-test) and any core dump.
        const crash = { reset_reason: ctx.ports.health?.resetReason() ?? null, coredump: ctx.ports.health?.coredump?.() ?? null };
        ctx.report(u, "rolled_back", { error_code: action.reason.code, error_message: action.reason.message, from_version: u.fromVersion, to_version: u.manifest.version, ...crash });
        ctx.state.save(IDLE);
        return "again";
      }
      case "abandon": {
        const u = action.update;
        ctx.ports.log.log("error", "update abandoned", { update_id: u.manifest.update_id, error: action.message });
        ctx.report(u, "failed", { error_code: "INTERNAL_ERROR", error_message: action.message });
        ctx.state.save(IDLE);
        return "again";
      }
    }
  }

  private settledOutcome(action: BootAction<Slot>): BootOutcome | null {
    return action.do === "confirmed" ? "confirmed" : action.do === "report-rollback" ? "rolled-back-reported" : null;
  }

  private bootFacts(s: UpdateState): BootFacts<Slot> {
    const { ota } = this.ctx.ports;
    const running = ota.running();
    const onTarget = s.phase !== "idle" && s.targetSlot === running.label;
    const slot = s.phase === "idle" || onTarget ? null : this.ctx.slotByLabel(s.targetSlot);
    return { state: s, running: ota.state(running), onTarget, target: slot ? { slot, state: ota.state(slot) } : null };
  }
}
