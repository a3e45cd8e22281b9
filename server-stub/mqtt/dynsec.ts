// Mosquitto's dynamic-security plugin, driven through its control topic: JSON command batches published on
// $CONTROL/dynamic-security/v1, answered on .../response with one result per command (an `error` string on failure).
import { randomUUID } from "node:crypto";
import type { MqttClient } from "mqtt";

export const CONTROL_TOPIC = "$CONTROL/dynamic-security/v1";
const RESPONSE_TOPIC = `${CONTROL_TOPIC}/response`;

export type DynsecCommand = { command: string } & Record<string, unknown>;
export interface DynsecResult {
  command: string;
  error?: string;
  data?: unknown;
}

/** A broker that answered nothing (no plugin, no rights) is reported, not waited on forever. */
const ANSWER_TIMEOUT_MS = 10_000;

export class DynsecControl {
  /** Batches awaiting their answer, by the correlationData of their first command. */
  private pending = new Map<string, { resolve: (r: DynsecResult[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private subscribed: Promise<unknown> | null = null;

  constructor(private client: MqttClient) {
    client.on("message", (topic, payload) => {
      if (topic !== RESPONSE_TOPIC) return;
      let body: { responses?: Array<DynsecResult & { correlationData?: string }> };
      try {
        body = JSON.parse(payload.toString("utf8"));
      } catch {
        return;
      }
      const responses = body.responses ?? [];
      const waiting = this.pending.get(responses[0]?.correlationData ?? "");
      if (!waiting) return; // another replica's batch: every admin session sees every answer
      this.pending.delete(responses[0]!.correlationData!);
      clearTimeout(waiting.timer);
      waiting.resolve(responses);
    });
    // A session that closed takes its answers with it: fail now, the next reconcile (on reconnect) sends again.
    client.on("close", () => this.failPending("broker connection lost"));
  }

  /** Sends a batch; resolves with one result per command, in order. */
  async run(commands: DynsecCommand[]): Promise<DynsecResult[]> {
    // Not queued while offline: a command sent later might undo a newer one.
    if (!this.client.connected) throw new Error("broker not connected");
    // The subscription is made once per client; mqtt.js renews it after a reconnect (resubscribe).
    this.subscribed ??= this.client.subscribeAsync(RESPONSE_TOPIC, { qos: 1 });
    await this.subscribed;
    const id = randomUUID();
    const batch = commands.map((c, i) => (i === 0 ? { ...c, correlationData: id } : c));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer on ${RESPONSE_TOPIC} within ${ANSWER_TIMEOUT_MS} ms (is the dynamic-security plugin loaded, and may this account use ${CONTROL_TOPIC}?)`));
      }, ANSWER_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.client.publish(CONTROL_TOPIC, JSON.stringify({ commands: batch }), { qos: 1 }, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err);
      });
    });
  }

  /** Like run, but throws on the first error that `tolerated` does not accept. */
  async expect(commands: DynsecCommand[], tolerated: (r: DynsecResult) => boolean = () => false): Promise<DynsecResult[]> {
    const results = await this.run(commands);
    const failed = results.find((r) => r.error && !tolerated(r));
    if (failed) throw new Error(`dynamic-security ${failed.command}: ${failed.error}`);
    return results;
  }

  close(): void {
    this.failPending("broker connection closed");
  }

  private failPending(why: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error(why));
      this.pending.delete(id);
    }
  }
}
