// A simulated ESP32 running the real agent: power on runs the bootloader model over the flash, and the
// firmware that "runs" is whatever it picked — its version and behaviour come from the booted image.
import { Agent } from "../../device/core/agent";
import type { BootOutcome, CheckOutcome } from "../../device/core/agent";
import type { AgentConfig, TrustedKey } from "../../device/core/config";
import { JournalStore } from "../../device/core/journal-store";
import { AbortedError } from "../../device/core/signal";
import type { ClockPort, HealthPort, LogPort } from "../../device/core/ports";
import type { ResetReason } from "../../device/protocol/health";
import type { HostPorts } from "../xs/xs-agent";
import { runBootloader } from "../esp/bootloader";
import { EspOta } from "../esp/esp-ota";
import { findByName } from "../esp/partition-table";
import type { NorFlash } from "../flash/nor-flash";
import { FlashError, PowerCutError } from "../flash/nor-flash";
import type http from "node:http";
import type { Behaviour } from "../../esp-image/app-image";
import { firmwareBehaviour, unitHash } from "./behaviour-mix";
import { nodeHash, nodeHashNativeEd25519 } from "./node-hash";
import { nodeVerifiers } from "./node-verifiers";
import type { NetworkFaults } from "./node-http";
import { NodeHttpPort } from "./node-http";
import { NodeMqttPort } from "./node-mqtt";
import { SimOtaPort } from "./sim-ota";
import { SimRawFlash } from "./sim-raw-flash";
import { XsAgent } from "../xs/xs-agent";
import type { HostNetwork } from "../xs/esp32-network-host";
import { XsEsp32Agent } from "../xs/xs-esp32-agent";

/** What SimDevice needs of an agent, whichever engine runs it. */
export interface AgentRunner {
  start(options: { poll?: boolean; mqtt?: boolean }): Promise<BootOutcome>;
  checkNow(): Promise<CheckOutcome>;
  stop(): Promise<void>;
}

/** Node runs the agent in this process; "xs" runs the same core on the real XS engine (xsnap); "xs-esp32" runs it
 * there over the real device/esp32 adapters and fakes of the Moddable modules they import (plain HTTP, no MQTT). */
export type AgentRuntime = "node" | "xs" | "xs-esp32";

export interface SimDeviceOptions {
  id: string;
  flash: NorFlash;
  serverUrl: string;
  apiKey: string;
  trustedKeys: TrustedKey[];
  mqttUrl?: string;
  /** PEM certificates of the pinned CAs (1, or 2 while rotating): HTTPS and MQTTS only, verified against them. */
  tlsCas?: string[];
  /** The device's client certificate and key (PEM), presented over TLS: with it the server needs no API key. */
  clientCert?: { cert: string; key: string };
  model?: string;
  hardwareVersion?: string;
  /** Agent options for this device (chunk size, deadlines, ...). */
  agent?: Partial<AgentConfig>;
  network?: NetworkFaults;
  /** Seed for the device's jitter; the same seed replays the same run. */
  seed?: number;
  clock?: ClockPort;
  log?: (line: string) => void;
  /** A boot loop longer than this is reported as such instead of spinning forever. */
  maxBoots?: number;
  runtime?: AgentRuntime;
  /** How images other than the factory one run on this board (fleet `--mix`); see behaviour-mix.ts. */
  board?: Behaviour;
  /** The version the device was factory-flashed with (default 1.0.0): it always runs healthy. */
  factoryVersion?: string;
  /** HTTP agent for every request (a fleet shares one keep-alive agent); Node's global agent by default. */
  httpAgent?: http.Agent;
  /** Verify manifest signatures with OpenSSL's ed25519 instead of the agent's tweetnacl (Node runtime; fleets). */
  nativeEd25519?: boolean;
  /** Keep only the last N log lines (default: all). */
  logLimit?: number;
  /** Fault injection at the port boundary (e.g. a port with a bug): sees the ports each boot's agent gets. */
  wrapPorts?: (ports: HostPorts) => HostPorts;
  /** XS only: sample live slots (after a GC) every N cranks, for memory figures. Costs compute; off by default. */
  xsSampleLiveSlotsEvery?: number;
  /** xs-esp32 only: the link under the fakes' sockets (take it down, count bytes); one per device by default. */
  esp32Network?: HostNetwork;
}

export type PowerOnResult =
  | { kind: "bricked"; log: string[] }
  | { kind: "crashed"; slot: string; version: string | null }
  | { kind: "power-cut" }
  | { kind: "restart"; reason: string }
  | { kind: "running"; slot: string; version: string | null; boot: BootOutcome };

export interface CycleResult {
  /** The last check's outcome once the device settled (no restart pending). */
  outcome: CheckOutcome | null;
  /** What the agent found at the last boot (confirmed, rolled-back-reported, ...). */
  lastBoot: BootOutcome | null;
  boots: number;
  bricked: boolean;
  slot: string | null;
  version: string | null;
}

/** Small seeded PRNG (mulberry32): reproducible jitter per device. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class SimDevice {
  readonly http: NodeHttpPort;
  readonly logs: string[] = [];
  boots = 0;
  /** Flash calls a firmware instance made after the power cycle that ended it (each refused). Must stay 0. */
  staleFlashAccesses = 0;
  /** What the last power-on booted (slot and version), without re-running the bootloader. */
  booted: { slot: string; version: string | null } | null = null;
  agent: AgentRunner | null = null;
  private mqtt: NodeMqttPort | null = null;
  private restartReason: string | null = null;
  /** Long-running mode: a restart the agent asks for (e.g. after an MQTT-triggered update) reboots at once. */
  private autoReboot = false;
  private generation = 0;
  private readonly clock: ClockPort;
  /** What esp_reset_reason() says at the next power-on: a crash or a restart, else a power-on. */
  private nextResetReason: ResetReason = "power_on";
  /** The version that crashed last (its core dump is what the next boot finds). */
  private crashedVersion: string | null = null;
  /** Crash or watchdog resets so far (all boots). */
  crashes = 0;

  constructor(readonly options: SimDeviceOptions) {
    this.http = new NodeHttpPort(options.network, options.httpAgent, options.tlsCas ? { cas: options.tlsCas, clientCert: options.clientCert } : null);
    const random = seededRandom(options.seed ?? 1);
    this.clock = options.clock ?? {
      now: () => Date.now(),
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
      random,
    };
  }

  get flash() {
    return this.options.flash;
  }

  /** One power-on: bootloader, then the firmware it chose, up to the end of the agent's boot handling. */
  async powerOn(agentStart: { poll?: boolean; mqtt?: boolean } = { poll: false }): Promise<PowerOnResult> {
    await this.powerOff();
    this.boots++;
    const flash = this.options.flash;
    if (!flash.isPowered) flash.powerOn();
    let boot: ReturnType<typeof runBootloader>;
    try {
      boot = runBootloader(flash); // writes otadata itself (NEW → PENDING_VERIFY → ABORTED): power can fail here too
    } catch (e) {
      if (this.isPowerLoss(e)) return { kind: "power-cut" };
      throw e;
    }
    for (const line of boot.log) this.note(`[boot ${this.boots}] ${line}`);
    if (!boot.partition) {
      this.booted = null;
      return { kind: "bricked", log: boot.log };
    }
    const version = boot.image?.appDesc?.version ?? null;
    this.booted = { slot: boot.partition.name, version };
    const behaviour = firmwareBehaviour(boot.image?.sim ?? null, {
      deviceId: this.options.id,
      version,
      ...(this.options.board ? { board: this.options.board } : {}),
      ...(this.options.factoryVersion ? { factoryVersion: this.options.factoryVersion } : {}),
    });
    const resetReason = this.nextResetReason;
    this.nextResetReason = "power_on";
    if (behaviour === "crash") {
      this.note(`[boot ${this.boots}] ${boot.partition.name} v${version}: firmware crashed at start-up (panic, reset)`);
      return this.crashed(boot.partition.name, version);
    }
    // This boot's firmware sees the flash through a fence: once the device is power-cycled, anything the old
    // instance still has in flight (a timer, a late network reply) fails instead of writing the flash. The
    // agent fences itself (device/core/guard.ts); this one counts what would have slipped through.
    const generation = ++this.generation;
    const fenced = fence(flash, () => generation === this.generation, () => this.staleFlashAccesses++);
    const esp = new EspOta(fenced, { running: boot.partition });
    const agentPartition = findByName(esp.partitions, "agent");
    if (!agentPartition) throw new Error("the partition table has no `agent` partition for the agent's state");
    this.restartReason = null;
    const raw = new SimRawFlash(fenced, agentPartition);
    const host = { ...this.ports(esp), health: this.healthPort(resetReason, version) };
    const ports = this.options.wrapPorts ? this.options.wrapPorts(host) : host;
    const selfTests: AgentConfig["selfTests"] = { ...(this.options.agent?.selfTests ?? {}) };
    if (behaviour === "fail-self-test") selfTests.firmware = () => false;
    if (behaviour === "hang") selfTests.firmware = () => new Promise<boolean>(() => {}); // never answers
    const config: AgentConfig = {
      deviceId: this.options.id,
      deviceModel: this.options.model ?? "ESP32-DEVKIT",
      hardwareVersion: this.options.hardwareVersion ?? "1.0",
      serverUrl: this.options.serverUrl,
      apiKey: this.options.apiKey,
      trustedKeys: this.options.trustedKeys,
      ...(this.options.tlsCas ? { pinnedCas: this.options.tlsCas } : {}),
      ...this.options.agent,
      selfTests,
    };
    this.agent = this.options.runtime === "xs-esp32" ? new XsEsp32Agent(config, ports, esp, this.options.esp32Network) : this.options.runtime === "xs" ? new XsAgent(config, ports, raw, { sampleLiveSlotsEvery: this.options.xsSampleLiveSlotsEvery ?? 0 }) : new Agent(config, { ...ports, storage: new JournalStore(raw, undefined, new TextEncoder()) });
    try {
      const outcome = await this.agent.start(agentStart);
      if (this.restartReason) return { kind: "restart", reason: this.restartReason };
      if (behaviour === "crash-after-confirm" && outcome === "confirmed") {
        this.note(`[boot ${this.boots}] ${boot.partition.name} v${version}: firmware crashed after confirming (panic, reset)`);
        await this.powerOff();
        return this.crashed(boot.partition.name, version);
      }
      return { kind: "running", slot: boot.partition.name, version, boot: outcome };
    } catch (e) {
      if (this.isPowerLoss(e)) return { kind: "power-cut" };
      throw e;
    }
  }

  /** Powers on and follows every restart until the device settles after one check-and-update cycle. */
  async runCycle(): Promise<CycleResult> {
    const maxBoots = this.options.maxBoots ?? 12;
    let checked = false;
    let outcome: CheckOutcome | null = null;
    let lastBoot: BootOutcome | null = null;
    for (let i = 0; i < maxBoots; i++) {
      const r = await this.powerOn();
      if (r.kind === "bricked") return { outcome, lastBoot, boots: this.boots, bricked: true, slot: null, version: null };
      if (r.kind !== "running") continue; // crash, power cut or restart: power on again
      lastBoot = r.boot;
      if (checked) return this.settled(outcome, lastBoot);
      try {
        outcome = await this.agent!.checkNow();
      } catch (e) {
        if (!this.isPowerLoss(e)) throw e;
        continue;
      }
      checked = true;
      if (!this.restartReason) return this.settled(outcome, lastBoot);
    }
    throw new Error(`device ${this.options.id} did not settle within ${maxBoots} boots:\n${this.logs.slice(-20).join("\n")}`);
  }

  /** Runs like a deployed device: polls and listens on MQTT, reboots whenever the firmware restarts. */
  async runForever(): Promise<void> {
    this.autoReboot = true;
    await this.bootForever();
  }

  private async bootForever() {
    for (let i = 0; i < (this.options.maxBoots ?? 12); i++) {
      const r = await this.powerOn({ poll: true, mqtt: true });
      if (r.kind === "bricked") throw new Error(`device ${this.options.id} is bricked:\n${r.log.join("\n")}`);
      if (r.kind === "running" && !this.restartReason) return;
      if (r.kind === "restart" && this.autoReboot) return; // the restart hook already scheduled the next boot
    }
    throw new Error(`device ${this.options.id} is in a boot loop`);
  }

  async stopForever() {
    this.autoReboot = false;
    await this.powerOff();
  }

  /** The MQTT session of the running firmware is up. */
  get mqttConnected(): boolean {
    return this.mqtt?.connected() ?? false;
  }

  /** The running firmware (after the last boot). */
  running(): { slot: string | null; version: string | null } {
    const r = runBootloader(this.options.flash, { dryRun: true });
    return { slot: r.partition?.name ?? null, version: r.image?.appDesc?.version ?? null };
  }

  async powerOff() {
    this.generation++;
    await this.agent?.stop();
    this.agent = null;
    const m = this.mqtt;
    this.mqtt = null;
    await m?.close();
  }

  private settled(outcome: CheckOutcome | null, lastBoot: BootOutcome | null): CycleResult {
    const now = this.running();
    return { outcome, lastBoot, boots: this.boots, bricked: false, ...now };
  }

  /** A power cut surfaces as whatever error the agent made of it; the flash knows the truth. */
  private isPowerLoss(e: unknown): boolean {
    // An agent stopped by a power-off (or a new boot) ends its work with AbortedError: that is the power loss too.
    return isPowerLoss(e) || e instanceof AbortedError || !this.options.flash.isPowered;
  }

  private crashed(slot: string, version: string | null): PowerOnResult {
    this.crashes++;
    this.crashedVersion = version;
    this.nextResetReason = "panic";
    return { kind: "crashed", slot, version };
  }

  /** The platform's health facts: the reset reason of this boot, uptime on the device clock, a heap that a
   * version's hash makes differ a little between releases (so metric rules have something to compare). */
  private healthPort(resetReason: ResetReason, version: string | null): HealthPort {
    const bootAt = this.clock.now();
    const heap = 120_000 - Math.floor(unitHash(`heap/${version ?? ""}`) * 8_000);
    // A crash leaves a core dump in flash (ESP-IDF's coredump partition), and it stays there, as on the chip, until
    // something erases it: a summary made up from the last crashed version's hash.
    const pc = 0x400d0000 + Math.floor(unitHash(`pc/${this.crashedVersion ?? ""}`) * 0x10000) * 4;
    const dump = this.crashes > 0 ? { task: "main", pc, cause: 28, backtrace: [pc, pc + 0x40, 0x400d2f10], backtrace_corrupted: false } : null;
    return { resetReason: () => resetReason, uptimeMs: () => this.clock.now() - bootAt, freeHeap: () => heap, minFreeHeap: () => heap - 4_000, coredump: () => dump };
  }

  /** Every port but storage: the journal runs inside the agent's engine, over the raw `agent` partition. */
  private ports(esp: EspOta): HostPorts {
    const log: LogPort = {
      log: (level, message, fields) => this.note(`[${this.options.id}] ${level} ${message}${fields ? " " + JSON.stringify(fields) : ""}`),
    };
    if (this.options.mqttUrl) this.mqtt = new NodeMqttPort(this.options.mqttUrl, this.options.id, this.options.apiKey, this.options.tlsCas ? { cas: this.options.tlsCas, clientCert: this.options.clientCert } : null);
    return {
      ota: new SimOtaPort(esp, esp.flash),
      http: this.http,
      ...(this.mqtt ? { mqtt: this.mqtt } : {}),
      hash: this.options.nativeEd25519 ? nodeHashNativeEd25519 : nodeHash,
      verifiers: nodeVerifiers(this.options.nativeEd25519),
      clock: this.clock,
      restart: {
        restart: (reason) => {
          this.restartReason = reason;
          this.nextResetReason = "software";
          if (this.autoReboot) setImmediate(() => this.bootForever().catch((e: unknown) => this.note(`[${this.options.id}] reboot failed: ${(e as Error)?.message ?? e}`)));
        },
      },
      log,
    };
  }

  private note(line: string) {
    this.logs.push(line);
    if (this.logs.length > (this.options.logLimit ?? Infinity)) this.logs.shift();
    this.options.log?.(line);
  }
}

/** A view of the flash that refuses (and counts) every call once `alive()` turns false. */
function fence(flash: NorFlash, alive: () => boolean, refused: () => void): NorFlash {
  return new Proxy(flash, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (!alive()) {
          refused();
          throw new FlashError("powered-off", "a firmware instance from before the last power cycle touched the flash");
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

export function isPowerLoss(e: unknown): boolean {
  return e instanceof PowerCutError || (e instanceof FlashError && e.code === "powered-off");
}
