// What the agent's parts share: the (guarded) ports, the resolved options, the persisted state, the outbox,
// the server client and the agent's lifetime signal.
import type { ReportableStatus } from "../protocol/status";
import { otaCommandTopic } from "../protocol/topics";
import type { ResolvedConfig } from "./config";
import { HealthMonitor } from "./health";
import { Outbox } from "./outbox";
import type { Ports, SignatureVerifier, Slot } from "./ports";
import type { Controller, Signal } from "./signal";
import type { UpdateRef } from "./state";
import { StateStore } from "./state";
import { UpdateClient } from "./update-client";
import { acceptedVerifiers } from "./verifiers/select";

export class AgentContext {
  readonly state: StateStore;
  readonly client: UpdateClient;
  readonly outbox: Outbox;
  readonly health: HealthMonitor;
  /** Manifest signature verifiers of the algorithms this device accepts (a misconfiguration throws here, at start). */
  readonly verifiers: SignatureVerifier[];

  constructor(
    readonly ports: Ports,
    readonly config: ResolvedConfig,
    private readonly life: Controller,
  ) {
    this.verifiers = acceptedVerifiers(ports, config.signatureAlgs);
    this.state = new StateStore(ports.storage);
    this.client = new UpdateClient(ports.http, config, ports.log);
    this.outbox = new Outbox(ports.storage, (id, report) => this.client.report(id, report), (report) => this.client.health(report));
    this.health = new HealthMonitor(this);
  }

  /** Fires when the agent stops: everything in flight winds down without touching flash. */
  get lifetime(): Signal {
    return this.life.signal;
  }

  /** Ends the agent's life: timers stop, in-flight work finds its ports closed. */
  stop(reason: string) {
    this.health.stop();
    this.life.abort(reason);
  }

  /** Queues a status report for the update durably (delivered by the next outbox flush). */
  report(u: UpdateRef, status: ReportableStatus, extra: Record<string, unknown> = {}) {
    this.outbox.add(u.manifest.update_id, { status, timestamp: this.timestamp(), ...extra });
    if (status === "completed" && !u.manifest.rollback) this.health.beginSoak(u.manifest.update_id);
  }

  timestamp(): string {
    return new Date(this.ports.clock.now()).toISOString();
  }

  subscriptions(): string[] {
    return [otaCommandTopic(this.config.deviceId)];
  }

  runningVersion(): string {
    return this.ports.ota.description(this.ports.ota.running())?.version ?? "0.0.0";
  }

  /** The slot of this partition table with that label (ota.running/nextUpdate/other cover every app slot). */
  slotByLabel(label: string): Slot | null {
    const { ota } = this.ports;
    for (const slot of [ota.running(), ota.nextUpdate(), ota.other()]) if (slot && slot.label === label) return slot;
    return null;
  }

  restart(reason: string) {
    this.ports.log.log("info", "restarting", { reason });
    this.ports.restart.restart(reason);
    this.stop("restarting"); // on a chip restart() does not return; in a simulator nothing may follow it
  }
}
