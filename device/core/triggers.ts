// What starts an update check: a periodic poll with jitter (the fallback that always works), an MQTT hint on
// devices/{id}/ota, or the application calling checkNow(). An MQTT message is only a hint: what to install
// always comes from the signed manifest over HTTP. A cancel for the update being downloaded stops it.
import { otaCommandTopic } from "../protocol/topics";
import type { AgentContext } from "./context";
import { errorMessage } from "./failures";

/** Largest MQTT payload the agent parses; a notification is well under 200 bytes. */
const MAX_NOTIFICATION_BYTES = 1024;

export interface TriggerTargets {
  check(): Promise<unknown>;
  cancel(updateId: string): void;
}

export class Triggers {
  private pollTimer: unknown = null;

  constructor(
    private readonly ctx: AgentContext,
    private readonly targets: TriggerTargets,
  ) {
    ctx.lifetime.onAbort(() => {
      if (this.pollTimer !== null) ctx.ports.clock.clearTimeout(this.pollTimer);
      this.pollTimer = null;
    });
  }

  start(options: { poll?: boolean; mqtt?: boolean }) {
    const { ports } = this.ctx;
    if (ports.mqtt && options.mqtt !== false) {
      ports.mqtt.onMessage((topic, payload) => this.onMqtt(topic, payload));
      ports.mqtt.connect(this.ctx.subscriptions()).catch((e) => ports.log.log("warn", "MQTT connect failed; polling", { error: errorMessage(e) }));
    }
    if (options.poll !== false) this.schedulePoll();
  }

  private schedulePoll() {
    const { ctx } = this;
    if (ctx.lifetime.aborted) return;
    const jitter = 0.8 + 0.4 * ctx.ports.clock.random();
    this.pollTimer = ctx.ports.clock.setTimeout(() => {
      this.pollTimer = null;
      this.targets
        .check()
        .catch((e) => ctx.ports.log.log("error", "poll failed", { error: errorMessage(e) }))
        .finally(() => this.schedulePoll());
    }, Math.floor(ctx.config.pollIntervalMs * jitter));
  }

  private onMqtt(topic: string, payload: string) {
    const { ctx } = this;
    if (ctx.lifetime.aborted || topic !== otaCommandTopic(ctx.config.deviceId) || payload.length > MAX_NOTIFICATION_BYTES) return;
    let msg: { action?: unknown; update_id?: unknown };
    try {
      const parsed: unknown = JSON.parse(payload);
      if (typeof parsed !== "object" || parsed === null) return;
      msg = parsed;
    } catch {
      return;
    }
    if (msg.action === "cancel" && typeof msg.update_id === "string") {
      this.targets.cancel(msg.update_id);
    } else if (msg.action === "update_available" || msg.action === "rollback") {
      this.targets.check().catch((e) => ctx.ports.log.log("error", "check failed", { error: errorMessage(e) }));
    }
  }
}
