// The new image on trial (PENDING_VERIFY) proves itself within a deadline — the network is up, the server
// heard us, MQTT connects, the post-update commands and the application's checks pass — and is confirmed;
// otherwise it marks itself invalid and restarts into the previous image, which then reports why.
import type { UpdateManifest } from "../protocol/manifest";
import type { BootOutcome } from "./agent";
import type { AgentContext } from "./context";
import { AbortedError, errorMessage, UpdateError } from "./failures";
import { anySignal, Controller, untilAborted } from "./signal";
import type { Signal } from "./signal";
import type { ActiveUpdate, Failure, UpdateRef } from "./state";
import { IDLE } from "./state";
import { sleep } from "./timing";

const RETRY_MS = 1000;

/** Runs the self-test on the running image; `update` is what put it there (null when a tool switched slots). */
export async function proveRunningImage(ctx: AgentContext, update: ActiveUpdate | null): Promise<BootOutcome> {
  if (update) ctx.state.save({ phase: "verifying", manifest: update.manifest, targetSlot: update.targetSlot, fromVersion: update.fromVersion });
  const { clock } = ctx.ports;
  const ms = ctx.config.selfTestDeadlineMs;
  const deadline = new Controller();
  const timer = clock.setTimeout(() => deadline.abort("deadline"), ms);
  const { signal, dispose } = anySignal(ctx.lifetime, deadline.signal);
  try {
    await untilAborted(runChecks(ctx, update?.manifest ?? null, signal), signal);
  } catch (e) {
    ctx.lifetime.throwIfAborted();
    const reason: Failure =
      deadline.signal.aborted ? { code: "TIMEOUT", message: `self-test did not pass within ${ms} ms` }
      : e instanceof AbortedError ? { code: "SELF_TEST_FAILED", message: e.message }
      : e instanceof UpdateError ? { code: e.code === "INTERNAL_ERROR" ? "SELF_TEST_FAILED" : e.code, message: e.message }
      : { code: "SELF_TEST_FAILED", message: errorMessage(e) };
    return rollBack(ctx, update, reason);
  } finally {
    clock.clearTimeout(timer);
    deadline.abort("self-test over"); // stops whatever check is still looping
    dispose();
  }
  ctx.ports.ota.markValid();
  finishCompleted(ctx, update);
  await ctx.outbox.flush();
  return "confirmed";
}

/** The running image is confirmed: raise the anti-rollback floor, report completed, go idle. */
export function finishCompleted(ctx: AgentContext, update: UpdateRef | null) {
  const { ota, log } = ctx.ports;
  const desc = ota.description(ota.running());
  if (desc) ctx.state.raiseSecureFloor(desc.secureVersion);
  if (update) ctx.report(update, "completed", { progress: 100, from_version: update.fromVersion, to_version: desc?.version ?? update.manifest.version });
  ctx.state.save(IDLE);
  log.log("info", "update confirmed", { update_id: update?.manifest.update_id ?? null, version: desc?.version ?? null });
}

/** Marks the running image invalid and restarts into the other slot (or keeps it, when there is none). */
export function rollBack(ctx: AgentContext, update: UpdateRef | null, reason: Failure): BootOutcome {
  const { ota, log } = ctx.ports;
  log.log("error", "self-test failed", { update_id: update?.manifest.update_id ?? null, code: reason.code, error: reason.message });
  if (!ota.rollbackPossible()) {
    // Nothing valid to go back to: keeping this image is the only way to keep a bootable device.
    ota.markValid();
    if (update) ctx.report(update, "failed", { error_code: reason.code, error_message: `${reason.message}; no previous image to roll back to, kept this one` });
    ctx.state.save(IDLE);
    return "self-test-failed";
  }
  if (update) ctx.state.save({ phase: "rolling_back", manifest: update.manifest, targetSlot: update.targetSlot, fromVersion: update.fromVersion, rollbackReason: reason });
  ota.markInvalid();
  ctx.restart(`self-test failed: ${reason.code}`);
  return "restarting";
}

/** Every check in turn; each retries until it passes or the signal (deadline or stop) fires. */
async function runChecks(ctx: AgentContext, manifest: UpdateManifest | null, signal: Signal) {
  const { ports, config, outbox } = ctx;
  // The network is up, the server is reachable and our reports (at least "installing") are delivered.
  while (!(await outbox.flush())) await pause(ctx, signal);
  // MQTT connects with this firmware's stack.
  if (ports.mqtt) {
    for (;;) {
      try {
        await untilAborted(ports.mqtt.connect(ctx.subscriptions()), signal);
        break;
      } catch (e) {
        if (e instanceof AbortedError) throw e;
        ports.log.log("info", "self-test: MQTT not connected yet", { error: errorMessage(e) });
        await pause(ctx, signal);
      }
    }
  }
  if (manifest) {
    for (const name of manifest.post_update_commands) {
      const hook = config.commands[name];
      if (!hook) throw new UpdateError("UNKNOWN_COMMAND", `no hook for post-update command "${name}"`);
      signal.throwIfAborted();
      await runHook(`post-update command ${name}`, () => hook({ updateId: manifest.update_id, version: manifest.version }));
    }
  }
  for (const [name, check] of Object.entries(config.selfTests)) {
    signal.throwIfAborted();
    const ok = await runHook(`self-test check ${name}`, check);
    if (ok === false) throw new UpdateError("SELF_TEST_FAILED", `self-test check ${name} failed`);
  }
}

async function pause(ctx: AgentContext, signal: Signal) {
  await sleep(ctx.ports.clock, RETRY_MS, signal);
  signal.throwIfAborted();
}

/** A hook's exception becomes a SELF_TEST_FAILED naming the hook (unless it already carries a code). */
export async function runHook<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof UpdateError) throw e;
    throw new UpdateError("SELF_TEST_FAILED", `${what} failed: ${errorMessage(e)}`);
  }
}

