// Device health reports end to end: a simulated device updates to a firmware that panics once after confirming;
// the server stores what the agent reported (at start, after confirming, after the crash reboot, then every
// interval until the soak window ends), on Node and on XS. And the outbox keeps at most one health report waiting.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../device/core/config";
import { Outbox } from "../device/core/outbox";
import type { HttpPort, StoragePort } from "../device/core/ports";
import { UpdateClient } from "../device/core/update-client";
import { deviceHealthPath, type HealthReport } from "../device/protocol";
import type { AgentRuntime } from "../host-sim/device/sim-device";
import type { World } from "./helpers/e2e";
import { assign, device, startWorld, TEST_AGENT, upload } from "./helpers/e2e";
import { api, asAdmin } from "./server/harness";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// On XS too: the metrics are functions of the host's configuration, read through the bridge (hook.metric).
describe.each(["node", "xs"] as AgentRuntime[])("health reports from the agent on %s", (runtime) => {
  let w: World;
  beforeAll(async () => (w = await startWorld(runtime)));
  afterAll(async () => w?.close());

  it("after confirming, after a crash reboot, then periodically until the soak window ends", async () => {
    const fw = await upload(w, "1.1.0", { behaviour: "crash-after-confirm" });
    let depth = 7;
    let clockAsked = 0; // the clockTrusted hook, asked when the manifest's time window is judged
    const { dev } = await device(w, `health-${runtime}`, {
      extra: { agent: { ...TEST_AGENT, healthSoakMs: 4000, healthIntervalMs: 300, metrics: { queue_depth: () => depth }, clockTrusted: () => (clockAsked++, true), selfTests: { sensor: () => true } } },
    });
    const reports = async () => ((await api(w.h, "GET", deviceHealthPath(`health-${runtime}`), asAdmin(w.h))).body.reports as HealthReport[]).reverse();
    try {
      await dev.powerOn();
      const { update_id } = await assign(w, `health-${runtime}`, fw);
      const r = await dev.runCycle();
      expect(r).toMatchObject({ version: "1.1.0" });
      expect(dev.crashes).toBe(1);
      expect(clockAsked).toBeGreaterThan(0);
      // A start report (the baseline) at each of the two power-ons on 1.0.0, then the one after confirming
      // (the agent restarted into the update: reset "software") and the one after the crash reboot.
      const first = await reports();
      expect(first.slice(0, 4).map((x) => [x.update_id, x.version])).toEqual([
        [null, "1.0.0"],
        [null, "1.0.0"],
        [update_id, "1.1.0"],
        [update_id, "1.1.0"],
      ]);
      expect(first[2]).toMatchObject({ checks: { sensor: true }, metrics: { queue_depth: 7 } });
      // Platform facts come from the health port, which the XS host does not bridge: "unknown" there.
      if (runtime === "node") {
        expect(first.slice(0, 4).map((x) => [x.reset_reason, x.crash_reboots])).toEqual([["power_on", 0], ["power_on", 0], ["software", 0], ["panic", 1]]);
        expect(first[2]).toMatchObject({ free_heap: expect.any(Number), min_free_heap: expect.any(Number) });
      }
      depth = 11;
      await sleep(4500); // past the 4 s window
      const all = await reports();
      const periodic = all.slice(4);
      expect(periodic.length).toBeGreaterThanOrEqual(2);
      expect(periodic.every((x) => x.update_id === update_id && (runtime === "xs" || x.crash_reboots === 1) && x.metrics.queue_depth === 11)).toBe(true);
      await sleep(900);
      expect((await reports()).length).toBe(all.length); // the window is over: no more reports
    } finally {
      await dev.powerOff();
    }
  }, 30_000);
});

describe("Outbox: health reports", () => {
  it("keep at most one waiting (the newest), behind the status reports, and go out when the server answers", async () => {
    const map = new Map<string, string>();
    const storage: StoragePort = { get: (k) => map.get(k), set: (k, v) => void map.set(k, v), delete: (k) => void map.delete(k) };
    let up = false;
    const sent: string[] = [];
    const http: HttpPort = {
      request: async (req) => {
        if (!up) throw new Error("offline");
        sent.push(req.url.replace("http://server", "") + " " + req.body);
        return { status: 200, headers: {}, body: "{}" };
      },
      stream: () => Promise.reject(new Error("no downloads here")),
    };
    const client = new UpdateClient(http, resolveConfig({ deviceId: "d1", deviceModel: "m", hardwareVersion: "1", serverUrl: "http://server", apiKey: "k", trustedKeys: [{ publicKey: "AAAA" }] }), { log: () => {} });
    const outbox = new Outbox(storage, (id, r) => client.report(id, r), (r) => client.health(r));
    const health = (uptime: number) => ({ update_id: "u1", version: "1.1.0", reset_reason: "software" as const, uptime_s: uptime, free_heap: null, min_free_heap: null, crash_reboots: 0, checks: {}, metrics: {} });
    outbox.add("u1", { status: "completed" });
    outbox.addHealth(health(1));
    outbox.addHealth(health(2));
    outbox.addHealth(health(3));
    expect(outbox.pending).toBe(2);
    expect(await outbox.flush()).toBe(false);
    up = true;
    expect(await outbox.flush()).toBe(true);
    expect(sent.map((s) => s.split(" ")[0])).toEqual(["/api/v1/updates/u1/status", "/api/v1/devices/d1/health"]);
    expect(JSON.parse(sent[1]!.split(" ").slice(1).join(" "))).toMatchObject({ uptime_s: 3, sequence: 4 });
  });
});
