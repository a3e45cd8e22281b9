// From an offered manifest to a restart into the new image: trust checks, pre-update commands, the streamed
// download into the inactive slot (or, for a signed rollback, the other slot as it is), verification, and
// the switch. Every step persists its phase first; every refusal is reported with its code.
import { hexEncode } from "../protocol/base64";
import type { DeviceErrorCode } from "../protocol/errors";
import type { UpdateManifest } from "../protocol/manifest";
import type { CheckOutcome } from "./agent";
import type { AgentContext } from "./context";
import { deliveryFields, deltaRefusal, newDownloader, PATCH_START } from "./delta-apply";
import type { DownloadHooks } from "./download";
import { asUpdateFailure, UpdateError } from "./failures";
import type { Slot } from "./ports";
import { OtaPortError } from "./ports";
import { forgetImage, rememberImage, runningImageDigest } from "./running-image";
import { runHook } from "./self-test";
import { Controller } from "./signal";
import type { Downloading, Switching, UpdateRef } from "./state";
import { IDLE } from "./state";
import { withTimeout } from "./timing";
import { currentKeySet, syncKeyList } from "./release-keys";
import { checkApplicable, checkManifestShape, parseEnvelope, verifyReleaseSignature, verifySignature } from "./trust";
import { ed25519Verifier, platformVerifiers } from "./verifiers/select";

type Accepted =
  | { kind: "none" }
  | { kind: "refused"; updateId: string | undefined; error: unknown }
  /** `source`: for a signed rollback, the other slot when it already holds the image (no download). */
  | { kind: "install"; ref: UpdateRef; source: Slot | null; delta: boolean };

export class Installer {
  /** The server's cancel of the download under way, if any. */
  private cancelling: { updateId: string; controller: Controller } | null = null;
  private lastProgress = -1;
  private lastProgressAt = 0;
  /** Why an offered delta is not used (reported with the first "downloading"). */
  private deltaRefused: string | null = null;

  constructor(private readonly ctx: AgentContext) {}

  /** A cancel from the server: honoured while that update downloads (after the switch it is too late). */
  cancel(updateId: string) {
    if (this.cancelling?.updateId === updateId) this.cancelling.controller.abort("cancelled by the server");
  }

  /** Asks the server and installs what it offers, if this device trusts and accepts it. */
  async checkAndInstall(): Promise<CheckOutcome> {
    const { ctx } = this;
    if (ctx.state.load().phase !== "idle") return { result: "busy" };
    await ctx.outbox.flush();
    const runningVersion = ctx.runningVersion();
    const runningSha256 = runningImageDigest(ctx)?.sha256;
    const offer = await ctx.client.check({ currentVersion: runningVersion, deviceModel: ctx.config.deviceModel, hardwareVersion: ctx.config.hardwareVersion, runningSha256 });
    if (offer.kind === "unreachable") {
      // The message starts with its code for a TLS refusal (TLS_UNTRUSTED_CA, ...): the log is the only place it goes.
      ctx.ports.log.log("warn", "check failed: server unreachable", { error: offer.message });
      return { result: "unreachable", message: offer.message };
    }
    await syncKeyList(ctx, offer.body); // a newer key list applies to this very offer
    // Only the accepted update outlives this line: the envelope and its checks are not kept during the download.
    const accepted = this.accept(offer.body, runningVersion, runningSha256);
    if (accepted.kind === "none") return { result: "none" };
    if (accepted.kind === "refused") return this.fail(accepted.updateId, accepted.error);
    const { ref, source, delta } = accepted;
    const { manifest } = ref;
    if (await this.defer(manifest)) return { result: "busy" };
    // Consumed from here on, before any side effect: a power cut now leaves a clean refusal, never a second apply.
    ctx.state.recordApplied(manifest);
    try {
      for (const name of manifest.pre_update_commands) {
        const hook = ctx.config.commands[name];
        if (hook) await runHook(`pre-update command ${name}`, () => hook({ updateId: manifest.update_id, version: manifest.version }));
      }
      if (source) {
        ctx.ports.log.log("info", "rollback: switching to the other slot, no download", { update_id: manifest.update_id, slot: source.label });
        return await this.switchNow({ phase: "switching", ...ref }, source);
      }
    } catch (e) {
      return this.fail(manifest.update_id, e);
    }
    return this.download({ phase: "downloading", ...ref, offset: 0, downloadAttempts: 0, ...(delta ? { delta: PATCH_START } : {}) });
  }

  /** The application's "busy until…": reported as deferred (not a failure) until maxDeferralMs after the first
   * one, which the journal keeps so that a reboot does not start the bound again. */
  private async defer(m: UpdateManifest): Promise<boolean> {
    const { ctx } = this;
    const now = ctx.ports.clock.now();
    const busy = await ctx.config.deferUpdate({ updateId: m.update_id, version: m.version, mandatory: m.mandatory });
    const first = ctx.state.deferredSince(m.update_id);
    // A clock that went back (a reboot before time sync) restarts the bound rather than deferring for ever.
    const since = first !== undefined && first <= now ? first : now;
    if (!busy || busy.until <= now || now - since >= ctx.config.maxDeferralMs) return false;
    if (since !== first) ctx.state.recordDeferral(m.update_id, since);
    ctx.ports.log.log("info", "update deferred by the application", { update_id: m.update_id, reason: busy.reason });
    ctx.outbox.add(m.update_id, { status: "deferred", reason: busy.reason.slice(0, 300), deferred_until: new Date(busy.until).toISOString(), timestamp: ctx.timestamp() });
    await ctx.outbox.flush();
    return true;
  }

  /** The trust checks (trust.ts), in the order that gives the most useful code; nothing touches flash yet. */
  private accept(body: string, runningVersion: string, runningSha256: string | undefined): Accepted {
    const { ctx } = this;
    const { ota } = ctx.ports;
    let updateId: string | undefined;
    try {
      const env = parseEnvelope(body, (m) => {
        // Known before any check, so every refusal (a missing signature included) is reported against it.
        if (typeof m.update_id === "string" && m.update_id.length <= 64) updateId = m.update_id;
      });
      if (!env) return { kind: "none" };
      const keys = currentKeySet(ctx.state, ctx.config);
      verifySignature(env, keys.serverKeys, ctx.verifiers);
      const raw = env.manifest as unknown as Record<string, unknown>;
      checkManifestShape(raw);
      const manifest: UpdateManifest = raw;
      if (ctx.config.requireReleaseSignature) verifyReleaseSignature(manifest, keys.releaseKeys, ed25519Verifier(platformVerifiers(ctx.ports)));
      const source = manifest.rollback ? this.rollbackSource(manifest) : null;
      const slot = source ?? ota.nextUpdate();
      checkApplicable(manifest, {
        deviceId: ctx.config.deviceId,
        deviceModel: ctx.config.deviceModel,
        hardwareVersion: ctx.config.hardwareVersion,
        chipId: ota.chipId,
        runningVersion,
        secureFloor: ctx.state.secureFloor(),
        applied: ctx.state.applied(),
        slotSize: slot?.size ?? 0,
        nowMs: ctx.ports.clock.now(),
        clockSkewMs: ctx.config.clockSkewMs,
        clockTrusted: ctx.config.clockTrusted(),
        knownCommands: Object.keys(ctx.config.commands),
      });
      if (!slot || slot.label === ota.running().label) throw new UpdateError("INSUFFICIENT_SPACE", "no OTA slot to update");
      this.deltaRefused = deltaRefusal(manifest, runningSha256);
      const delta = !!manifest.delta && this.deltaRefused === null;
      return { kind: "install", ref: { manifest, targetSlot: slot.label, fromVersion: runningVersion }, source, delta };
    } catch (e) {
      return { kind: "refused", updateId, error: e };
    }
  }

  /** Streams the image into its slot (from the persisted offset after a reboot), verifies it, switches. */
  async download(s: Downloading): Promise<CheckOutcome> {
    const { ctx } = this;
    const { manifest } = s;
    const slot = ctx.slotByLabel(s.targetSlot);
    try {
      if (!slot || slot.label === ctx.ports.ota.running().label) {
        throw new UpdateError("INSUFFICIENT_SPACE", `target slot ${s.targetSlot} is not an updatable slot`);
      }
      if (s.offset === 0) {
        forgetImage(ctx, slot);
        ctx.report(s, "downloading", { progress: 0, ...deliveryFields(s, this.deltaRefused) });
      }
      this.lastProgress = -1;
      this.lastProgressAt = ctx.ports.clock.now();
      const controller = new Controller();
      this.cancelling = { updateId: manifest.update_id, controller };
      const hooks: DownloadHooks = {
        persist: (offset, attempts, delta) => ctx.state.save(delta ? { ...s, offset, downloadAttempts: attempts, delta } : { ...s, offset, downloadAttempts: attempts }),
        progress: (bytes, total) => this.progress(manifest.update_id, bytes, total),
      };
      const baseSize = s.delta ? (runningImageDigest(ctx)?.size ?? ctx.ports.ota.running().size) : 0;
      const downloader = newDownloader(ctx, s, slot, controller.signal, hooks, baseSize);
      // "downloading" goes out before the first bytes come in: one network operation in flight at a time.
      await ctx.outbox.flush();
      await downloader.run(s.offset, s.downloadAttempts);
      this.cancelling = null;
      const desc = ctx.ports.ota.description(slot);
      if (!desc || desc.version !== manifest.version || desc.secureVersion !== manifest.secure_version) {
        throw new UpdateError(
          "IMAGE_INVALID",
          `image describes itself as ${desc ? `version ${desc.version}, secure_version ${desc.secureVersion}` : "nothing"}, the manifest says ${manifest.version}/${manifest.secure_version}`,
        );
      }
      rememberImage(ctx, slot, { sha256: manifest.sha256, size: manifest.size });
      return await this.switchNow({ phase: "switching", manifest, targetSlot: s.targetSlot, fromVersion: s.fromVersion }, slot);
    } catch (e) {
      this.cancelling = null;
      return this.fail(manifest.update_id, e);
    }
  }

  /** Makes the verified slot the boot partition, reports installing, restarts into it. */
  async switchTo(s: Switching, slot: Slot): Promise<CheckOutcome> {
    try {
      return await this.switchNow(s, slot);
    } catch (e) {
      return this.fail(s.manifest.update_id, e);
    }
  }

  private async switchNow(s: Switching, slot: Slot): Promise<CheckOutcome> {
    const { ctx } = this;
    ctx.state.save(s);
    try {
      ctx.ports.ota.setBoot(slot);
    } catch (e) {
      if (!(e instanceof OtaPortError)) throw e;
      throw new UpdateError("IMAGE_INVALID", `set_boot_partition refused ${slot.label}: ${e.message}`);
    }
    // No progress report is still on its way (the download waited for each), so none lands after "installing".
    ctx.report(s, "installing", { progress: 100 });
    try {
      await withTimeout(ctx.ports.clock, ctx.outbox.flush(), ctx.config.requestTimeoutMs, "report");
    } catch {
      // Undelivered reports stay in the outbox; the new image delivers them as part of its self-test.
    }
    ctx.restart(`switching to ${slot.label} for ${s.manifest.version}`);
    return { result: "restarting", updateId: s.manifest.update_id };
  }

  /** For a signed rollback: the other slot, when it already holds the target version and may be booted. */
  private rollbackSource(m: UpdateManifest): Slot | null {
    const { ota, hash } = this.ctx.ports;
    const other = ota.other();
    if (!other || !ota.rollbackPossible()) return null;
    if (ota.description(other)?.version !== m.version || m.size > other.size) return null;
    // Same bytes as the manifest says, or it is not the image the server means.
    const sha = hash.sha256();
    const buf = new Uint8Array(this.ctx.config.chunkSize);
    for (let at = 0; at < m.size; at += buf.length) {
      const piece = buf.subarray(0, Math.min(buf.length, m.size - at));
      ota.read(other, at, piece);
      sha.update(piece);
    }
    return hexEncode(sha.digest()) === m.sha256 ? other : null;
  }

  /** Reports the failure (bugs as INTERNAL_ERROR, at once) and goes idle; a stopping agent does neither. */
  private async fail(updateId: string | undefined, e: unknown): Promise<CheckOutcome> {
    const failure = asUpdateFailure(e);
    if (!(failure instanceof UpdateError)) throw failure;
    const { ctx } = this;
    const code: DeviceErrorCode = failure.code;
    ctx.ports.log.log("error", "update failed", { update_id: updateId ?? null, code, error: failure.message });
    ctx.state.save(IDLE);
    if (updateId) {
      ctx.outbox.add(updateId, { status: "failed", error_code: code, error_message: failure.message.slice(0, 300), timestamp: ctx.timestamp() });
      await ctx.outbox.flush();
    }
    return { result: "failed", code, message: failure.message, updateId };
  }

  /** Best effort, never persisted, and only when no stored report waits (sequences stay in order). The download
   * waits for it: never a report and a read in flight together, which bounds the agent's memory on the chip. */
  private progress(updateId: string, bytes: number, total: number): Promise<unknown> | void {
    const { ctx } = this;
    const percent = Math.floor((bytes * 100) / total);
    if (percent < this.lastProgress + ctx.config.progressStepPercent || percent >= 100) return;
    const now = ctx.ports.clock.now();
    if (now - this.lastProgressAt < ctx.config.progressMinIntervalMs) return;
    this.lastProgress = percent;
    this.lastProgressAt = now;
    if (ctx.outbox.pending > 0) return;
    return ctx.client.report(updateId, { status: "downloading", progress: percent, timestamp: ctx.timestamp(), sequence: ctx.outbox.takeSequence() });
  }
}
