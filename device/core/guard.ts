// The agent's view of its ports, fenced by its lifetime signal: once the agent is stopped (a power-off in a
// simulator, a restart on a chip), nothing it still has in flight — a timer, a late network reply, a hook that
// answers after its deadline — can write flash, persist state, report or restart. The core enforces this
// itself; a simulator's fence only detects what would slip through.
import { AbortedError } from "./signal";
import type { Signal } from "./signal";
import type { OtaPort, OtaWriter, Ports, StoragePort } from "./ports";

export function guardPorts(ports: Ports, alive: Signal): Ports {
  const check = () => alive.throwIfAborted();
  const { ota, storage, http, restart } = ports;
  const guardedOta: OtaPort = {
    get chipId() {
      return ota.chipId;
    },
    running: () => ota.running(),
    nextUpdate: () => ota.nextUpdate(),
    other: () => ota.other(),
    state: (slot) => ota.state(slot),
    description: (slot) => ota.description(slot),
    read: (slot, offset, into) => (check(), ota.read(slot, offset, into)),
    begin: (slot, size) => (check(), guardWriter(ota.begin(slot, size), check)),
    resume: (slot, offset) => (check(), guardWriter(ota.resume(slot, offset), check)),
    setBoot: (slot) => (check(), ota.setBoot(slot)),
    markValid: () => (check(), ota.markValid()),
    markInvalid: () => (check(), ota.markInvalid()),
    rollbackPossible: () => ota.rollbackPossible(),
  };
  const guardedStorage: StoragePort = {
    get: (key) => storage.get(key),
    set: (key, value) => (check(), storage.set(key, value)),
    delete: (key) => (check(), storage.delete(key)),
  };
  const refuse = () => Promise.reject(new AbortedError(alive.reason));
  return {
    ...ports,
    ota: guardedOta,
    storage: guardedStorage,
    http: {
      request: (req) => (alive.aborted ? refuse() : http.request(req)),
      stream: (url, headers, timeoutMs) => (alive.aborted ? refuse() : http.stream(url, headers, timeoutMs)),
    },
    restart: { restart: (reason) => (check(), restart.restart(reason)) },
  };
}

function guardWriter(writer: OtaWriter, check: () => void): OtaWriter {
  return {
    get written() {
      return writer.written;
    },
    write: (bytes) => (check(), writer.write(bytes)),
    end: () => (check(), writer.end()),
    // Freeing the handle writes nothing; a stopped agent may still let go of it.
    abort: () => writer.abort(),
  };
}
