// Three kinds of failure, handled three ways:
// - UpdateError: this update cannot succeed (bad signature, checksum, refused image...): report its code, stop.
// - TransientError: the network or the server failed for now: retry with backoff, resume where we were.
// - anything else is a bug in the agent or a port (a TypeError...): report INTERNAL_ERROR at once, never retry.
// An AbortedError (signal.ts) is none of these: the agent is stopping and must not touch flash or report.
import { AbortedError } from "./signal";
import { UpdateError } from "./update-error";

export { AbortedError } from "./signal";
export { UpdateError } from "./update-error";

export class TransientError extends Error {}
// The name lives on the prototype: `this.name = …` throws under Moddable's frozen Error.prototype.
Object.defineProperty(TransientError.prototype, "name", { value: "TransientError" });

/** Wraps a port's rejection (the port contract: network calls reject only on network errors) as transient. */
export async function transient<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (e) {
    if (e instanceof AbortedError || e instanceof UpdateError || e instanceof TransientError) throw e;
    throw new TransientError(errorMessage(e));
  }
}

/** What a caught error means for the update: an UpdateError to report, or AbortedError to let through. */
export function asUpdateFailure(e: unknown): UpdateError | AbortedError {
  if (e instanceof UpdateError || e instanceof AbortedError) return e;
  if (e instanceof TransientError) return new UpdateError("DOWNLOAD_FAILED", e.message);
  const name = e instanceof Error ? e.name : typeof e;
  return new UpdateError("INTERNAL_ERROR", `${name}: ${errorMessage(e)}`);
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
