// The update agent: an explicit state machine (state.ts) driven by triggers (MQTT, poll, local call) and by
// what the device finds at boot. Platform-free: it sees the world only through ports.ts.
import { hexEncode } from "../protocol/base64";
import type { DeviceErrorCode } from "../protocol/errors";
import type { UpdateManifest } from "../protocol/manifest";
import type { ReportableStatus } from "../protocol/status";
import { otaCommandTopic } from "../protocol/topics";
import type { AgentConfig, ResolvedConfig } from "./config";
import { resolveConfig } from "./config";
import { Downloader } from "./download";
import { Outbox } from "./outbox";
import type { Ports, Slot } from "./ports";
import { OtaPortError } from "./ports";
import { runHook, runSelfTest } from "./self-test";
import type { UpdateState } from "./state";
import { StateStore } from "./state";
import { TimeoutError, withTimeout } from "./timing";
import { checkApplicable, checkManifestShape, parseEnvelope, verifySignature } from "./trust";
import { UpdateError } from "./update-error";

export type CheckOutcome =
  | { result: "none" }
  | { result: "busy" }
  | { result: "unreachable"; message: string }
  | { result: "failed"; code: DeviceErrorCode; message: string; updateId?: string }
  | { result: "restarting"; updateId: string };

/** What start() found and did at boot. */
export type BootOutcome =
  | "normal"
  | "confirmed"
  | "rolled-back-reported"
  | "self-test-failed"
  | "resumed-download"
  | "restarting";

export class Agent {
  readonly config: ResolvedConfig;
  private readonly state: StateStore;
  private readonly outbox: Outbox;
  private boot = 0;
  private busy: Promise<CheckOutcome> | null = null;
  private pollTimer: unknown = null;
  private stopped = false;
  private lastProgress = -1;
  private cancelRequested: string | null = null;
  private progressInFlight: Promise<unknown> | null = null;

  constructor(config: AgentConfig, private readonly ports: Ports) {
    this.config = resolveConfig(config);
    this.state = new StateStore(ports.storage);
    this.outbox = new Outbox(ports.storage, ports.http, ports.log, {
      serverUrl: this.config.serverUrl,
      apiKey: this.config.apiKey,
      timeoutMs: this.config.requestTimeoutMs,
    });
  }

  get phase() {
    return this.state.load().phase;
  }

  get isStopped() {
    return this.stopped;
  }

  /** Boot handling first (confirm, roll back, resume), then the triggers. */
  async start(options: { poll?: boolean; mqtt?: boolean } = {}): Promise<BootOutcome> {
    this.boot = this.state.nextBoot();
    const outcome = await this.resumeAfterBoot();
    if (this.stopped) return outcome;
    if (this.ports.mqtt && options.mqtt !== false) {
      this.ports.mqtt.onMessage((topic, payload) => this.onMqtt(topic, payload));
      this.ports.mqtt.connect(this.subscriptions()).catch((e) => this.ports.log.log("warn", "MQTT connect failed; polling", { error: String(e?.message ?? e) }));
    }
    if (options.poll !== false) this.schedulePoll();
    return outcome;
  }

  async stop() {
    this.stopped = true;
    if (this.pollTimer !== null) this.ports.clock.clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  /** One check-and-update cycle; concurrent triggers share the running one. */
  checkNow(): Promise<CheckOutcome> {
    if (this.stopped) return Promise.resolve({ result: "busy" });
    if (!this.busy) this.busy = this.check().finally(() => (this.busy = null));
    return this.busy;
  }

  private subscriptions() {
    return [otaCommandTopic(this.config.deviceId)];
  }

  private schedulePoll() {
    if (this.stopped) return;
    const jitter = 0.8 + 0.4 * this.ports.clock.random();
    this.pollTimer = this.ports.clock.setTimeout(() => {
      this.pollTimer = null;
      this.checkNow()
        .catch((e) => this.ports.log.log("error", "poll failed", { error: String(e?.message ?? e) }))
        .finally(() => this.schedulePoll());
    }, Math.floor(this.config.pollIntervalMs * jitter));
  }

  private onMqtt(topic: string, payload: string) {
    if (topic !== otaCommandTopic(this.config.deviceId) || payload.length > 1024) return;
    let msg: { action?: unknown; update_id?: unknown };
    try {
      msg = JSON.parse(payload);
    } catch {
      return;
    }
    // The message is only a hint: what to install comes from the signed manifest over HTTP.
    if (msg.action === "cancel" && typeof msg.update_id === "string") {
      const s = this.state.load();
      if (s.phase === "downloading" && s.manifest?.update_id === msg.update_id) this.cancelRequested = msg.update_id;
      return;
    }
    if (msg.action === "update_available" || msg.action === "rollback") {
      this.checkNow().catch((e) => this.ports.log.log("error", "check failed", { error: String(e?.message ?? e) }));
    }
  }

  // ---- boot ----

  private async resumeAfterBoot(): Promise<BootOutcome> {
    const { ota, log } = this.ports;
    const s = this.state.load();
    const running = ota.running();
    const runningState = ota.state(running);
    log.log("info", "agent start", { boot: this.boot, phase: s.phase, running: running.label, state: runningState });

    if (s.phase === "idle") {
      if (runningState === "pending_verify") return this.verifyNewImage(s); // switched by someone else (e.g. a tool)
      await this.outbox.flush();
      return "normal";
    }
    if (s.phase === "downloading") {
      const outcome = await this.download(s);
      return outcome.result === "restarting" ? "restarting" : "resumed-download";
    }
    const onTarget = running.label === s.targetSlot;
    if (onTarget && runningState === "pending_verify" && (s.phase === "switching" || s.phase === "verifying")) {
      return this.verifyNewImage(s);
    }
    if (onTarget && runningState === "valid") {
      // Confirmed, but power failed before the state said so.
      this.finishCompleted(s);
      await this.outbox.flush();
      return "confirmed";
    }
    if (onTarget) {
      // PENDING_VERIFY in the rolling_back phase: the rollback did not happen yet; do it now.
      return this.rollBack(s, s.rollbackReason ?? { code: "SELF_TEST_FAILED", message: "self-test failed" });
    }
    // Running the old image.
    const target = this.slotByLabel(s.targetSlot);
    const targetState = target ? ota.state(target) : "none";
    if (s.phase === "switching" && (targetState === "none" || targetState === "undefined" || targetState === "valid")) {
      // Power failed between persisting "switching" and set_boot_partition: do the switch again.
      return (await this.switchTo(s, target!)).result === "restarting" ? "restarting" : "normal";
    }
    const reason =
      s.rollbackReason ??
      (s.selfTestStartedAt
        ? { code: "SELF_TEST_FAILED" as const, message: "new image restarted during its self-test (crash, watchdog or power loss) and was rolled back" }
        : targetState === "new" || targetState === "pending_verify"
          ? { code: "IMAGE_INVALID" as const, message: "the bootloader could not load the new image and kept the old one" }
          : { code: "SELF_TEST_FAILED" as const, message: "new image crashed before its self-test; the bootloader rolled back" });
    this.report(s, "rolled_back", { error_code: reason.code, error_message: reason.message, from_version: s.fromVersion ?? null, to_version: s.manifest?.version ?? null });
    this.state.save({ phase: "idle" });
    await this.outbox.flush();
    return "rolled-back-reported";
  }

  /** The new image runs in PENDING_VERIFY: pass the self-test within the deadline, or roll back. */
  private async verifyNewImage(s: UpdateState): Promise<BootOutcome> {
    const { ota, clock } = this.ports;
    this.state.save({ ...s, phase: "verifying", selfTestStartedAt: this.boot });
    try {
      await withTimeout(clock, runSelfTest(this.ports, this.config, this.outbox, s.manifest, this.subscriptions()), this.config.selfTestDeadlineMs, "self-test");
    } catch (e) {
      const reason =
        e instanceof TimeoutError
          ? { code: "TIMEOUT" as const, message: `self-test did not pass within ${this.config.selfTestDeadlineMs} ms` }
          : e instanceof UpdateError
            ? { code: e.code, message: e.message }
            : { code: "SELF_TEST_FAILED" as const, message: String((e as Error)?.message ?? e) };
      return this.rollBack(s, reason);
    }
    ota.markValid();
    this.finishCompleted(s);
    await this.outbox.flush();
    return "confirmed";
  }

  private finishCompleted(s: UpdateState) {
    const desc = this.ports.ota.description(this.ports.ota.running());
    if (desc) this.state.raiseSecureFloor(desc.secureVersion);
    if (s.manifest) {
      this.report(s, "completed", { progress: 100, from_version: s.fromVersion ?? null, to_version: desc?.version ?? s.manifest.version });
    }
    this.state.save({ phase: "idle" });
    this.ports.log.log("info", "update confirmed", { update_id: s.manifest?.update_id ?? null, version: desc?.version ?? null });
  }

  private rollBack(s: UpdateState, reason: { code: DeviceErrorCode; message: string }): BootOutcome {
    const { ota, log } = this.ports;
    log.log("error", "self-test failed", { update_id: s.manifest?.update_id ?? null, code: reason.code, error: reason.message });
    if (!ota.rollbackPossible()) {
      // Nothing valid to go back to: keeping this image is the only way to keep a bootable device.
      ota.markValid();
      this.report(s, "failed", { error_code: reason.code, error_message: `${reason.message}; no previous image to roll back to, kept this one` });
      this.state.save({ phase: "idle" });
      return "self-test-failed";
    }
    this.state.save({ ...s, phase: "rolling_back", rollbackReason: reason });
    ota.markInvalid();
    this.restart(`self-test failed: ${reason.code}`);
    return "restarting";
  }

  // ---- check and install ----

  private async check(): Promise<CheckOutcome> {
    const s = this.state.load();
    if (s.phase !== "idle") return { result: "busy" };
    await this.outbox.flush();
    const { ota, http } = this.ports;
    const running = ota.running();
    const runningVersion = ota.description(running)?.version ?? "0.0.0";
    const q = [
      `current_version=${encodeURIComponent(runningVersion)}`,
      `device_model=${encodeURIComponent(this.config.deviceModel)}`,
      `hardware_version=${encodeURIComponent(this.config.hardwareVersion)}`,
    ].join("&");
    let body: string;
    try {
      const res = await http.request({
        method: "GET",
        url: `${this.config.serverUrl}/api/v1/devices/${encodeURIComponent(this.config.deviceId)}/available-updates?${q}`,
        headers: { "x-api-key": this.config.apiKey },
        timeoutMs: this.config.requestTimeoutMs,
      });
      if (res.status !== 200) return { result: "unreachable", message: `available-updates answered ${res.status}` };
      body = res.body;
    } catch (e) {
      return { result: "unreachable", message: String((e as Error)?.message ?? e) };
    }

    let manifest: UpdateManifest;
    let updateId: string | undefined;
    try {
      const env = parseEnvelope(body, (m) => {
        // Known before any check, so every refusal (a missing signature included) is reported against it.
        if (typeof m.update_id === "string" && m.update_id.length <= 64) updateId = m.update_id;
      });
      if (!env) return { result: "none" };
      const raw = env.manifest as unknown as Record<string, unknown>;
      verifySignature(env, this.config.trustedKeys, this.ports.hash.verifyEd25519?.bind(this.ports.hash));
      checkManifestShape(raw);
      manifest = raw;
      const target = manifest.rollback ? this.rollbackSource(manifest) : null;
      checkApplicable(manifest, {
        deviceId: this.config.deviceId,
        deviceModel: this.config.deviceModel,
        hardwareVersion: this.config.hardwareVersion,
        chipId: ota.chipId,
        runningVersion,
        secureFloor: this.state.secureFloor(),
        slotSize: (target ?? ota.nextUpdate())?.size ?? 0,
        nowMs: this.ports.clock.now(),
        clockSkewMs: this.config.clockSkewMs,
        clockTrusted: this.config.clockTrusted(),
        knownCommands: Object.keys(this.config.commands),
      });
      for (const name of manifest.pre_update_commands) {
        await runHook(`pre-update command ${name}`, () => this.config.commands[name]!({ updateId: manifest.update_id, version: manifest.version }));
      }
      const base: UpdateState = { phase: "downloading", manifest, fromSlot: running.label, fromVersion: runningVersion, offset: 0, downloadAttempts: 0 };
      if (target) {
        this.ports.log.log("info", "rollback: switching to the other slot, no download", { update_id: manifest.update_id, slot: target.label });
        return this.switchTo({ ...base, phase: "switching", targetSlot: target.label, slotSwitchOnly: true }, target);
      }
      const slot = ota.nextUpdate();
      if (!slot) throw new UpdateError("INSUFFICIENT_SPACE", "no OTA slot to update");
      return this.download({ ...base, targetSlot: slot.label });
    } catch (e) {
      if (!(e instanceof UpdateError)) throw e;
      return this.fail(updateId, { phase: "idle" }, e);
    }
  }

  /** For a signed rollback: the other slot, when it already holds the target version and may be booted. */
  private rollbackSource(m: UpdateManifest): Slot | null {
    const { ota } = this.ports;
    const other = ota.other();
    if (!other || !ota.rollbackPossible()) return null;
    if (ota.description(other)?.version !== m.version || m.size > other.size) return null;
    // Same bytes as the manifest says, or it is not the image the server means.
    const sha = this.ports.hash.sha256();
    const buf = new Uint8Array(this.config.chunkSize);
    for (let at = 0; at < m.size; at += buf.length) {
      const piece = buf.subarray(0, Math.min(buf.length, m.size - at));
      ota.read(other, at, piece);
      sha.update(piece);
    }
    return hexEncode(sha.digest()) === m.sha256 ? other : null;
  }

  private async download(s: UpdateState): Promise<CheckOutcome> {
    const manifest = s.manifest!;
    const slot = this.slotByLabel(s.targetSlot);
    if (!slot || slot.label === this.ports.ota.running().label) {
      return this.fail(manifest.update_id, { phase: "idle" }, new UpdateError("INSUFFICIENT_SPACE", `target slot ${s.targetSlot} is not an updatable slot`));
    }
    if ((s.offset ?? 0) === 0) this.report(s, "downloading", { progress: 0 });
    this.lastProgress = -1;
    this.cancelRequested = null;
    const downloader = new Downloader(this.ports, this.config, manifest, slot, {
      persist: (offset, attempts) => this.state.save({ ...s, phase: "downloading", offset, downloadAttempts: attempts }),
      progress: (bytes, total) => this.progress(manifest.update_id, bytes, total),
    });
    try {
      await this.outbox.flush();
      await downloader.run(s.offset ?? 0, s.downloadAttempts ?? 0);
      const desc = this.ports.ota.description(slot);
      if (!desc || desc.version !== manifest.version || desc.secureVersion !== manifest.secure_version) {
        throw new UpdateError(
          "IMAGE_INVALID",
          `image describes itself as ${desc ? `version ${desc.version}, secure_version ${desc.secureVersion}` : "nothing"}, the manifest says ${manifest.version}/${manifest.secure_version}`,
        );
      }
    } catch (e) {
      if (!(e instanceof UpdateError)) throw e;
      return this.fail(manifest.update_id, { phase: "idle" }, e);
    }
    return this.switchTo({ ...s, phase: "switching", offset: manifest.size }, slot);
  }

  private async switchTo(s: UpdateState, slot: Slot): Promise<CheckOutcome> {
    const manifest = s.manifest!;
    this.state.save(s);
    try {
      this.ports.ota.setBoot(slot);
    } catch (e) {
      if (!(e instanceof OtaPortError)) throw e;
      return this.fail(manifest.update_id, { phase: "idle" }, new UpdateError("IMAGE_INVALID", `set_boot_partition refused ${slot.label}: ${e.message}`));
    }
    // A progress report still on its way must not land after "installing".
    await this.progressInFlight;
    this.report(s, "installing", { progress: 100 });
    try {
      await withTimeout(this.ports.clock, this.outbox.flush(), this.config.requestTimeoutMs, "report");
    } catch {
      // Undelivered reports stay in the outbox; the new image delivers them as part of its self-test.
    }
    this.restart(`switching to ${slot.label} for ${manifest.version}`);
    return { result: "restarting", updateId: manifest.update_id };
  }

  private async fail(updateId: string | undefined, next: UpdateState, e: UpdateError): Promise<CheckOutcome> {
    this.ports.log.log("error", "update failed", { update_id: updateId ?? null, code: e.code, error: e.message });
    this.state.save(next);
    if (updateId) {
      this.outbox.add(updateId, { status: "failed", error_code: e.code, error_message: e.message.slice(0, 300), timestamp: this.timestamp() });
      await this.outbox.flush();
    }
    return { result: "failed", code: e.code, message: e.message, updateId };
  }

  private progress(updateId: string, bytes: number, total: number) {
    if (this.cancelRequested === updateId) throw new UpdateError("CANCELLED", "the server cancelled this update");
    const percent = Math.floor((bytes * 100) / total);
    if (percent < this.lastProgress + this.config.progressStepPercent || percent >= 100) return;
    this.lastProgress = percent;
    // Best effort, never persisted, and only when no stored report waits (sequences stay in order).
    if (this.outbox.pending > 0 || this.progressInFlight) return;
    const report = { status: "downloading" as const, progress: percent, timestamp: this.timestamp(), sequence: this.outbox.takeSequence() };
    this.progressInFlight = this.outbox.send(updateId, report).finally(() => (this.progressInFlight = null));
  }

  private report(s: UpdateState, status: ReportableStatus, extra: Record<string, unknown>) {
    if (!s.manifest) return;
    this.outbox.add(s.manifest.update_id, { status, timestamp: this.timestamp(), ...extra });
  }

  private timestamp() {
    return new Date(this.ports.clock.now()).toISOString();
  }

  private slotByLabel(label: string | undefined): Slot | null {
    if (!label) return null;
    const { ota } = this.ports;
    for (const slot of [ota.running(), ota.nextUpdate(), ota.other()]) if (slot && slot.label === label) return slot;
    return null;
  }

  private restart(reason: string) {
    void this.stop();
    this.ports.log.log("info", "restarting", { reason });
    this.ports.restart.restart(reason);
  }
}
