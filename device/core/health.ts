// Health reports: after an update is confirmed, and then every healthIntervalMs for healthSoakMs, the agent tells
// the server how the new firmware runs (reset reason, uptime, heap, crash reboots since the update, the app's checks
// run again, the app's metrics), so a release can be judged by more than its self-test. One report also goes out at
// each start (update_id null): the devices still on the previous version give the server its baseline.
// Reports queue in the outbox (at most one waits: a newer one replaces it) and never run during an update.
import type { HealthReport, ResetReason } from "../protocol/health";
import { CRASH_RESET_REASONS } from "../protocol/health";
import type { AgentContext } from "./context";

const HEALTH_KEY = "ota.health";

/** Persisted: the soak window of the last confirmed update and the crash reboots seen in it. */
interface Soak {
  updateId: string;
  until: number;
  crashes: number;
}

export class HealthMonitor {
  private timer: unknown = null;
  private readonly startedAt: number;

  constructor(private readonly ctx: AgentContext) {
    this.startedAt = ctx.ports.clock.now();
  }

  /** The update was confirmed: its soak window starts now (called as "completed" is queued). */
  beginSoak(updateId: string) {
    if (this.ctx.config.healthSoakMs <= 0) return;
    this.save({ updateId, until: this.ctx.ports.clock.now() + this.ctx.config.healthSoakMs, crashes: 0 });
  }

  /** At each start, once boot recovery is over: counts a crash reset inside the window, reports, schedules.
   * After reporting a crash it asks for an update at once: the server may have decided on a rollback, and an
   * MQTT hint sent while this boot was not yet subscribed is lost. */
  async start(checkNow: () => void): Promise<void> {
    const soak = this.activeSoak();
    const crashed = soak !== null && (CRASH_RESET_REASONS as readonly string[]).includes(this.resetReason());
    if (crashed) {
      soak.crashes++;
      this.save(soak);
    }
    if (soak || this.ctx.config.healthReportAtStart) await this.report(soak);
    if (crashed) checkNow();
    this.schedule();
  }

  stop() {
    if (this.timer !== null) this.ctx.ports.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule() {
    const soak = this.activeSoak();
    if (!soak || this.ctx.lifetime.aborted) return;
    const { clock } = this.ctx.ports;
    const wait = Math.min(this.ctx.config.healthIntervalMs, Math.max(0, soak.until - clock.now()));
    this.timer = clock.setTimeout(() => {
      this.timer = null;
      // Never during an update: a download keeps the agent's memory to itself.
      const idle = this.ctx.state.load().phase === "idle";
      const s = this.activeSoak();
      (idle && s ? this.report(s) : Promise.resolve()).then(() => this.schedule(), () => this.schedule());
    }, wait);
  }

  /** Storage errors propagate (a power cut must end this boot, as everywhere else); the app's hooks cannot throw here. */
  private async report(soak: Soak | null) {
    this.ctx.outbox.addHealth(await this.collect(soak));
    await this.ctx.outbox.flush();
  }

  /** One report: platform facts from the health port (absent: unknown), the app's checks and metrics. */
  private async collect(soak: Soak | null): Promise<Omit<HealthReport, "sequence">> {
    const { ports, config } = this.ctx;
    const h = ports.health;
    // Keyed by the application's names: no prototype, so a name Object.prototype holds (frozen on the device,
    // "constructor", "toString"…) is assigned as any other instead of throwing.
    const checks: Record<string, boolean> = Object.create(null);
    for (const name of Object.keys(config.selfTests)) {
      try {
        checks[name] = (await config.selfTests[name]!()) !== false;
      } catch {
        checks[name] = false;
      }
    }
    const metrics: Record<string, number> = Object.create(null);
    for (const name of Object.keys(config.metrics)) {
      try {
        const v = config.metrics[name]!();
        if (Number.isFinite(v)) metrics[name] = v;
      } catch {
        // a metric that cannot be read is left out
      }
    }
    return {
      update_id: soak ? soak.updateId : null,
      version: this.ctx.runningVersion(),
      reset_reason: this.resetReason(),
      uptime_s: Math.floor((h ? h.uptimeMs() : ports.clock.now() - this.startedAt) / 1000),
      free_heap: h ? h.freeHeap() : null,
      min_free_heap: h ? h.minFreeHeap() : null,
      crash_reboots: soak ? soak.crashes : 0,
      checks,
      metrics,
      timestamp: this.ctx.timestamp(),
    };
  }

  private resetReason(): ResetReason {
    return this.ctx.ports.health ? this.ctx.ports.health.resetReason() : "unknown";
  }

  private activeSoak(): Soak | null {
    const raw = this.ctx.ports.storage.get(HEALTH_KEY);
    if (!raw) return null;
    try {
      const s = JSON.parse(raw) as Soak;
      return this.ctx.ports.clock.now() < s.until ? s : null;
    } catch {
      return null;
    }
  }

  private save(s: Soak) {
    this.ctx.ports.storage.set(HEALTH_KEY, JSON.stringify(s));
  }
}
