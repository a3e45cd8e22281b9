// The agent's view of its ports, fenced by its lifetime signal: once the agent is stopped (a power-off in a
// simulator, a restart on a chip), nothing it still has in flight — a timer, a late network reply, a hook that
// answers after its deadline — can write flash, persist state, report or restart. The core enforces this
// itself; a simulator's fence only detects what would slip through. Classes, not closures: their methods
// are shared, so a fence costs the agent a few slots, not a function object per method.
import { AbortedError } from "./signal";
import type { Signal } from "./signal";
import type { AppDescription, HttpBodyStream, HttpPort, HttpRequest, HttpResponse, ImageState, OtaPort, OtaWriter, Ports, RestartPort, Slot, StoragePort } from "./ports";

export function guardPorts(ports: Ports, alive: Signal): Ports {
  return {
    ...ports,
    ota: new GuardedOta(ports.ota, alive),
    storage: new GuardedStorage(ports.storage, alive),
    http: new GuardedHttp(ports.http, alive),
    restart: new GuardedRestart(ports.restart, alive),
  };
}

class GuardedOta implements OtaPort {
  constructor(private readonly ota: OtaPort, private readonly alive: Signal) {}
  get chipId() {
    return this.ota.chipId;
  }
  running(): Slot {
    return this.ota.running();
  }
  nextUpdate(): Slot | null {
    return this.ota.nextUpdate();
  }
  other(): Slot | null {
    return this.ota.other();
  }
  state(slot: Slot): ImageState {
    return this.ota.state(slot);
  }
  description(slot: Slot): AppDescription | null {
    return this.ota.description(slot);
  }
  rollbackPossible(): boolean {
    return this.ota.rollbackPossible();
  }
  read(slot: Slot, offset: number, into: Uint8Array) {
    this.alive.throwIfAborted();
    this.ota.read(slot, offset, into);
  }
  begin(slot: Slot, imageSize: number): OtaWriter {
    this.alive.throwIfAborted();
    return new GuardedWriter(this.ota.begin(slot, imageSize), this.alive);
  }
  resume(slot: Slot, offset: number): OtaWriter {
    this.alive.throwIfAborted();
    return new GuardedWriter(this.ota.resume(slot, offset), this.alive);
  }
  setBoot(slot: Slot) {
    this.alive.throwIfAborted();
    this.ota.setBoot(slot);
  }
  markValid() {
    this.alive.throwIfAborted();
    this.ota.markValid();
  }
  markInvalid() {
    this.alive.throwIfAborted();
    this.ota.markInvalid();
  }
}

class GuardedWriter implements OtaWriter {
  constructor(private readonly writer: OtaWriter, private readonly alive: Signal) {}
  get written() {
    return this.writer.written;
  }
  write(bytes: Uint8Array) {
    this.alive.throwIfAborted();
    this.writer.write(bytes);
  }
  end() {
    this.alive.throwIfAborted();
    this.writer.end();
  }
  /** Freeing the handle writes nothing; a stopped agent may still let go of it. */
  abort() {
    this.writer.abort();
  }
}

class GuardedStorage implements StoragePort {
  constructor(private readonly storage: StoragePort, private readonly alive: Signal) {}
  get(key: string) {
    return this.storage.get(key);
  }
  set(key: string, value: string) {
    this.alive.throwIfAborted();
    this.storage.set(key, value);
  }
  delete(key: string) {
    this.alive.throwIfAborted();
    this.storage.delete(key);
  }
}

class GuardedHttp implements HttpPort {
  constructor(private readonly http: HttpPort, private readonly alive: Signal) {}
  request(req: HttpRequest): Promise<HttpResponse> {
    return this.alive.aborted ? Promise.reject(new AbortedError(this.alive.reason)) : this.http.request(req);
  }
  stream(url: string, headers: Record<string, string>, timeoutMs: number): Promise<HttpBodyStream> {
    return this.alive.aborted ? Promise.reject(new AbortedError(this.alive.reason)) : this.http.stream(url, headers, timeoutMs);
  }
}

class GuardedRestart implements RestartPort {
  constructor(private readonly port: RestartPort, private readonly alive: Signal) {}
  restart(reason: string) {
    this.alive.throwIfAborted();
    this.port.restart(reason);
  }
}
