// The post-update self-test a PENDING_VERIFY image must pass before it confirms itself.
import type { UpdateManifest } from "../protocol/manifest";
import type { ResolvedConfig } from "./config";
import type { Outbox } from "./outbox";
import type { Ports } from "./ports";
import { sleep } from "./timing";
import { UpdateError } from "./update-error";

const RETRY_MS = 1000;

/** Runs until every check passed; the caller bounds it with the deadline (a failing check throws). */
export async function runSelfTest(ports: Ports, config: ResolvedConfig, outbox: Outbox, manifest: UpdateManifest | undefined, subscriptions: string[]) {
  // The network is up, the server is reachable and our reports (at least "installing") are delivered.
  while (!(await outbox.flush())) await sleep(ports.clock, RETRY_MS);
  // MQTT connects with this firmware's stack.
  if (ports.mqtt) {
    for (;;) {
      try {
        await ports.mqtt.connect(subscriptions);
        break;
      } catch (e) {
        ports.log.log("info", "self-test: MQTT not connected yet", { error: (e as Error).message });
        await sleep(ports.clock, RETRY_MS);
      }
    }
  }
  for (const name of manifest?.post_update_commands ?? []) {
    const hook = config.commands[name];
    if (!hook) throw new UpdateError("UNKNOWN_COMMAND", `no hook for post-update command "${name}"`);
    await runHook(`post-update command ${name}`, () => hook({ updateId: manifest!.update_id, version: manifest!.version }));
  }
  for (const [name, check] of Object.entries(config.selfTests)) {
    const ok = await runHook(`self-test check ${name}`, check);
    if (ok === false) throw new UpdateError("SELF_TEST_FAILED", `self-test check ${name} failed`);
  }
}

/** A hook's exception becomes a SELF_TEST_FAILED naming the hook (unless it already carries a code). */
export async function runHook<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof UpdateError) throw e;
    throw new UpdateError("SELF_TEST_FAILED", `${what} failed: ${(e as Error)?.message ?? String(e)}`);
  }
}
