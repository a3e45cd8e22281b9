// N simulated devices in one process, each with its own (sparse) flash, MQTT session and agent, against a
// running OTA server. Cheap by construction: flashes store only written sectors, every device shares one
// keep-alive HTTP agent, polls are minutes apart (with the agent's ±20 % jitter) because MQTT carries the
// "update available" hint, and device logs are kept short.
import http from "node:http";
import https from "node:https";
import type { AgentConfig, TrustedKey } from "../../device/core/config";
import { createDeviceFlash, programPartition } from "../device-flash";
import type { BehaviourMix } from "../device/behaviour-mix";
import { boardBehaviour } from "../device/behaviour-mix";
import { SimDevice } from "../device/sim-device";
import { pinnedFetch } from "../pinned-fetch";
import type { Behaviour } from "../../esp-image/app-image";
import { buildAppImage, readAppDesc } from "../../esp-image/app-image";
import { loadPartitionTable } from "../esp/esp-ota";
import { findByName } from "../esp/partition-table";
import { ROUTES } from "../../device/protocol/paths";

export interface FleetOptions {
  devices: number;
  serverUrl: string;
  /** An admin or operator credential: a JWT (sent as Bearer) or an API key (sent as X-API-Key). It registers the
   * devices; each gets its own API key. */
  token: string;
  /** Broker for the devices; default: the server's own (GET /health → mqtt_url); null = HTTP polling only. */
  mqttUrl?: string | null;
  /** Board behaviours for every image but the factory one (see behaviour-mix.ts); default all healthy. */
  mix?: BehaviourMix;
  seed?: number;
  /** Device ids are `${prefix}${index}` zero-padded (default "sim-"). */
  prefix?: string;
  /** A device group every device joins at registration (created if missing), e.g. for a campaign's target_groups. */
  group?: string;
  model?: string;
  hardwareVersion?: string;
  /** The factory image (default: v1.0.0 of 64 KiB). Its version is what the devices register with. */
  factoryImage?: Uint8Array;
  /** Fallback HTTP poll period (default 60 s, ±20 % jitter per device). */
  pollIntervalMs?: number;
  /** Further agent options for every device. */
  agent?: Partial<AgentConfig>;
  /** Concurrent sockets of the shared HTTP agent (default 256). */
  maxSockets?: number;
  /** PEM certificates of the CAs every device pins (1, or 2 while rotating): the server must then be https. */
  tlsCas?: string[];
  /** Device log lines at warn/error level (default: dropped). */
  log?: (line: string) => void;
  /** Devices registered beforehand, id (as fleetDeviceIds names them) → API key: none is registered again. */
  apiKeys?: ReadonlyMap<string, string>;
}

/** The ids of a fleet of `n`: `${prefix}${index}`, zero-padded to at least 3 digits. */
export function fleetDeviceIds(n: number, prefix = "sim-"): string[] {
  const width = Math.max(3, String(n).length);
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(width, "0")}`);
}

export interface FleetDevice {
  id: string;
  board: Behaviour;
  dev: SimDevice;
}

export class Fleet {
  private constructor(
    readonly devices: FleetDevice[],
    readonly httpAgent: http.Agent,
    readonly mqttUrl: string | null,
  ) {}

  /** Registers the devices, factory-flashes them and boots them (polling + MQTT). */
  static async start(o: FleetOptions): Promise<Fleet> {
    const server = o.serverUrl.replace(/\/+$/, "");
    const sockets = { keepAlive: true, maxSockets: o.maxSockets ?? 256, maxFreeSockets: o.maxSockets ?? 256 };
    const httpAgent = server.startsWith("https:") ? new https.Agent({ ...sockets, ...(o.tlsCas ? { ca: o.tlsCas } : {}) }) : new http.Agent(sockets);
    const fetch = pinnedFetch(o.tlsCas);
    const credential: Record<string, string> = o.token.split(".").length === 3 ? { authorization: `Bearer ${o.token}` } : { "x-api-key": o.token };
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(server + path, {
        method,
        headers: { ...credential, ...(body ? { "content-type": "application/json" } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      }).catch((e: Error) => {
        throw new Error(`cannot reach ${server}: ${(e.cause as Error | undefined)?.message ?? e.message}`);
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
      return JSON.parse(text);
    };
    const mqttUrl = o.mqttUrl === undefined ? (((await call("GET", ROUTES.health)) as { mqtt_url?: string | null }).mqtt_url ?? null) : o.mqttUrl;
    const keys: TrustedKey[] = ((await call("GET", ROUTES.keys)) as { keys: { key_id: string; public_key: string }[] }).keys.map((k) => ({
      keyId: k.key_id,
      publicKey: k.public_key,
    }));
    const factory = o.factoryImage ?? buildAppImage({ version: "1.0.0", size: 64 * 1024 });
    const factoryVersion = factoryVersionOf(factory);
    const model = o.model ?? "ESP32-DEVKIT";
    const hardwareVersion = o.hardwareVersion ?? "1.0";
    const seed = o.seed ?? 1;
    const ids = fleetDeviceIds(o.devices, o.prefix);

    const devices: FleetDevice[] = new Array(ids.length);
    await pool(ids.map((id, i) => async () => {
      const known = o.apiKeys?.get(id);
      if (o.apiKeys && known === undefined) throw new Error(`apiKeys has no key for ${id}`);
      const reg = known !== undefined ? { api_key: known } : ((await call("POST", ROUTES.devices, { device_id: id, device_model: model, hardware_version: hardwareVersion, current_version: factoryVersion, groups: o.group ? [o.group] : [] })) as { api_key: string });
      const flash = createDeviceFlash({ sparse: true });
      programPartition(flash, findByName(loadPartitionTable(flash), "ota_0")!, factory);
      const board = o.mix ? boardBehaviour(o.mix, seed, id) : "healthy";
      const dev = new SimDevice({
        id,
        flash,
        serverUrl: server,
        apiKey: reg.api_key,
        trustedKeys: keys,
        model,
        hardwareVersion,
        seed: seed * 100_003 + i,
        board,
        factoryVersion,
        httpAgent,
        ...(o.tlsCas ? { tlsCas: o.tlsCas } : {}),
        logLimit: 40,
        nativeEd25519: true,
        maxBoots: 1000,
        ...(mqttUrl ? { mqttUrl } : {}),
        agent: { pollIntervalMs: o.pollIntervalMs ?? 60_000, ...o.agent },
        log: (line) => {
          if (o.log && / (warn|error) /.test(line)) o.log(line);
        },
      });
      devices[i] = { id, board, dev };
    }), 16);
    const fleet = new Fleet(devices, httpAgent, mqttUrl);
    // Staggered power-on: a thousand simultaneous MQTT handshakes would only queue anyway.
    await pool(devices.map((d) => () => d.dev.runForever()), 32);
    return fleet;
  }

  /** Resolves when every device's MQTT session is up (so no "update available" hint is missed). */
  async waitConnected(timeoutMs = 30_000): Promise<void> {
    if (!this.mqttUrl) return;
    const end = Date.now() + timeoutMs;
    while (this.devices.some((d) => !d.dev.mqttConnected)) {
      if (Date.now() > end) throw new Error(`${this.devices.filter((d) => !d.dev.mqttConnected).length} device(s) not connected to MQTT after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Devices per running version (what their bootloaders picked at the last boot). */
  versions(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const d of this.devices) {
      const v = d.dev.booted ? (d.dev.booted.version ?? "?") : "bricked";
      out[v] = (out[v] ?? 0) + 1;
    }
    return out;
  }

  /** Devices per agent phase (idle, downloading, switching, verifying, rolling_back) or "booting". */
  phases(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const d of this.devices) {
      const a = d.dev.agent as { phase?: string } | null;
      let p = "booting";
      try {
        p = a?.phase ?? "booting";
      } catch {
        p = "booting";
      }
      out[p] = (out[p] ?? 0) + 1;
    }
    return out;
  }

  /** Bytes of firmware the devices downloaded (all attempts). */
  downloadedBytes(): number {
    return this.devices.reduce((n, d) => n + d.dev.http.downloaded, 0);
  }

  async stop(): Promise<void> {
    await pool(this.devices.map((d) => () => d.dev.stopForever()), 64);
    this.httpAgent.destroy();
  }
}

function factoryVersionOf(image: Uint8Array): string {
  const desc = readAppDesc(image);
  if (!desc) throw new Error("the factory image has no app descriptor");
  return desc.version;
}

/** Runs the tasks with at most `n` at a time; the first failure rejects (after the running ones finish). */
export async function pool(tasks: Array<() => Promise<unknown>>, n: number): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (next < tasks.length && failure === null) {
      const t = tasks[next++]!;
      try {
        await t();
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, tasks.length) }, worker));
  if (failure !== null) throw failure;
}
