// Reliability harness 2: bad networks between the real agent and the real server stub. Drops at seeded random
// offsets, stalls, a slow link, a server restart mid-download, a server that ignores Range, and a server that
// cannot serve the file: each update completes (resuming with Range: at most 1.1 × the image downloaded) or
// fails cleanly with a code the server records, the device still on its old image.
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NetworkFaults } from "../../host-sim/device/node-http";
import type { World } from "../helpers/e2e";
import { assign, device, image, inspect, startWorld, TEST_AGENT, updateRecord, upload } from "../helpers/e2e";
import { FULL, printCounts, seededRandom } from "./support";

const SIZE = 200 * 1024;

describe("network faults against the real server", () => {
  let w: World;
  let serial = 0;
  const tally = { scenarios: 0, completed: 0, failedCleanly: 0, worstRatio: 0 };
  beforeAll(async () => {
    w = await startWorld("node");
    await upload(w, "1.0.0");
  });
  afterAll(async () => {
    printCounts(`network scenarios: ${tally.scenarios}, completed: ${tally.completed}, failed cleanly: ${tally.failedCleanly}, worst bytes/image when resuming: ${tally.worstRatio.toFixed(3)}`);
    await w?.close();
  });

  /** Uploads a fresh version, assigns it to a fresh device with these faults, runs the cycle. */
  async function scenario(name: string, network: NetworkFaults, during?: (dev: { http: { downloaded: number } }) => Promise<void>) {
    tally.scenarios++;
    const version = `1.1.${++serial}`;
    const bytes = image(version, "healthy", SIZE);
    const fw = await upload(w, version, { bytes });
    const { dev } = await device(w, `net-${serial}-${name.replace(/\W+/g, "-")}`, { extra: { network } });
    const { update_id } = await assign(w, dev.options.id, fw);
    const cycle = dev.runCycle();
    if (during) await during(dev);
    const r = await cycle;
    const record = await updateRecord(w, update_id);
    return { r, record, dev, bytes, update_id };
  }

  function expectCompleted(s: Awaited<ReturnType<typeof scenario>>, resuming = true) {
    const log = s.dev.logs.slice(-15).join("\n");
    expect(s.r, log).toMatchObject({ bricked: false, version: s.record.to_version ?? s.r.version, lastBoot: "confirmed" });
    expect(s.record.status, log).toBe("completed");
    expect(s.dev.http.downloaded).toBeGreaterThanOrEqual(s.bytes.length);
    const ratio = s.dev.http.downloaded / s.bytes.length;
    if (resuming) {
      tally.worstRatio = Math.max(tally.worstRatio, ratio);
      expect(ratio).toBeLessThanOrEqual(1.1);
    }
    tally.completed++;
  }

  const seeds = FULL ? Array.from({ length: 20 }, (_, i) => 100 + i) : [101, 102, 103];
  it.each(seeds)("drops at seeded random offsets (seed %i)", async (seed) => {
    const rand = seededRandom(seed);
    const dropAt = Array.from({ length: 2 + Math.floor(rand() * 6) }, () => Math.floor(rand() * SIZE));
    expectCompleted(await scenario(`drops-${seed}`, { dropAt }));
  }, 30_000);

  it.each(FULL ? [7, 8, 9, 10] : [7])("stalls at seeded random offsets (seed %i)", async (seed) => {
    const rand = seededRandom(seed);
    const stallAt = Array.from({ length: 2 }, () => Math.floor(rand() * SIZE));
    const s = await scenario(`stalls-${seed}`, { stallAt });
    expectCompleted(s);
    expect(s.dev.logs.join("\n")).toMatch(/stalled|timed out/);
  }, 30_000);

  it("a slow link (160 KB/s) with a drop", async () => {
    expectCompleted(await scenario("slow", { bytesPerSecond: 160_000, dropAt: [SIZE / 2] }));
  }, 30_000);

  it("the server restarts mid-download", async () => {
    w.proxy.bytesPerSecond = 200_000;
    const s = await scenario("restart", {}, async (dev) => {
      while (dev.http.downloaded < SIZE / 3) await new Promise((r) => setTimeout(r, 10));
      w.proxy.dropConnections(); // the restart is a crash for whoever was connected
      await w.h.restart();
      w.proxy.target = w.h.server.url;
    }).finally(() => (w.proxy.bytesPerSecond = undefined));
    expectCompleted(s);
    expect(s.dev.logs.join("\n"), s.dev.logs.slice(-30).join("\n")).toMatch(/download interrupted/);
  }, 30_000);

  it("a server without Range support, with a drop: restarts from zero and completes", async () => {
    w.proxy.ignoreRange = true;
    try {
      const s = await scenario("norange", { dropAt: [SIZE / 2] });
      expectCompleted(s, false);
      expect(s.dev.http.downloaded).toBe(SIZE / 2 + s.bytes.length);
    } finally {
      w.proxy.ignoreRange = false;
    }
  }, 30_000);


  it("a server that lost the file: DOWNLOAD_FAILED, reported, old image kept", async () => {
    tally.scenarios++;
    const bytes = image("1.9.0", "healthy", 96 * 1024);
    const fw = await upload(w, "1.9.0", { bytes });
    rmSync(w.h.server.ctx.blobs.pathFor(createHash("sha256").update(bytes).digest("hex")));
    const { dev } = await device(w, "net-noblob", { extra: { agent: { ...TEST_AGENT, maxDownloadAttempts: 4 } } });
    const { update_id } = await assign(w, dev.options.id, fw);
    const r = await dev.runCycle();
    expect(r.outcome).toMatchObject({ result: "failed", code: "DOWNLOAD_FAILED" });
    expect(r).toMatchObject({ bricked: false, slot: "ota_0", version: "1.0.0" });
    expect(inspect(dev.flash).bootSlot).toBe("ota_0");
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "failed", error: { code: "DOWNLOAD_FAILED" } });
    tally.failedCleanly++;
  }, 30_000);
});
