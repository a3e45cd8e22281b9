// The outbox's sequence numbers: reserved in blocks so progress reports rarely cost a journal commit, and never
// handed out twice, across reboots and power cuts (the server would drop a second report under a used number).
import { describe, expect, it } from "vitest";
import { JournalStore } from "../device/core/journal-store";
import { resolveConfig } from "../device/core/config";
import { UpdateClient } from "../device/core/update-client";
import { Outbox } from "../device/core/outbox";
import type { HttpPort, HttpRequest } from "../device/core/ports";
import type { StatusReport } from "../device/protocol/status";
import { SimRawFlash } from "../host-sim/device/sim-raw-flash";
import type { Partition } from "../host-sim/esp/partition-table";
import { NorFlash, PowerCutError, SECTOR_SIZE } from "../host-sim/flash/nor-flash";
import { seededRandom } from "../host-sim/device/sim-device";

const part: Partition = { name: "agent", type: 1, subtype: 6, offset: 0, size: 16 * SECTOR_SIZE, encrypted: false, readonly: false };

/** The status endpoint as the server sees it: every report received, answered 200. */
function statusServer() {
  const received: StatusReport[] = [];
  const http: HttpPort = {
    request: async (req: HttpRequest) => {
      received.push(JSON.parse(req.body!) as StatusReport);
      return { status: 200, headers: {}, body: "{}" };
    },
    stream: () => Promise.reject(new Error("no downloads here")),
  };
  return { received, http };
}

/** One boot of the device: the journal reopened from flash, a fresh Outbox over it. */
function boot(flash: NorFlash, http: HttpPort) {
  const storage = new JournalStore(new SimRawFlash(flash, part));
  const client = new UpdateClient(http, resolveConfig({ deviceId: "d", deviceModel: "m", hardwareVersion: "1", serverUrl: "http://server", apiKey: "k", trustedKeys: [{ publicKey: "AAAA" }], requestTimeoutMs: 1000 }), { log: () => {} });
  return new Outbox(storage, (id, report) => client.report(id, report));
}

describe("Outbox sequence numbers", () => {
  it("take one journal commit per block of 16 progress sequences, and carry on after a reboot from the block's end", () => {
    const flash = NorFlash.memory(part.size);
    const { http } = statusServer();
    const outbox = boot(flash, http);
    const taken = Array.from({ length: 40 }, () => outbox.takeSequence());
    expect(taken).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(flash.stats.writes).toBe(3); // reserved at 1, 17 and 33
    const after = boot(flash, http); // 41..48 were reserved but never handed out: skipped, not reused
    expect(after.takeSequence()).toBe(49);
  });

  it("never hand the same number to two reports across reboots and power cuts", async () => {
    const flash = NorFlash.memory(part.size);
    const { received, http } = statusServer();
    const rand = seededRandom(7);
    let report = 0;
    let cuts = 0;
    for (let b = 0; b < 120; b++) {
      const outbox = boot(flash, http);
      // Most boots lose power at one of their next few flash operations, landed or torn.
      const op = 1 + Math.floor(rand() * 4);
      if (rand() < 0.8) flash.armFaults(rand() < 0.5 ? { cutAfter: op } : { tear: { op, fraction: rand() } });
      try {
        for (let i = 0; i < 1 + Math.floor(rand() * 30); i++) {
          const id = `report ${++report}`; // what the report is, to tell two reports under one number apart
          if (rand() < 0.85) {
            await outbox.send("u1", { status: "downloading", progress: i, timestamp: id, sequence: outbox.takeSequence() });
          } else {
            outbox.add("u1", { status: "installing", timestamp: id });
            await outbox.flush();
          }
        }
      } catch (e) {
        expect(e).toBeInstanceOf(PowerCutError);
        cuts++;
      }
      flash.powerOn();
    }
    await boot(flash, http).flush(); // what the last boot left queued
    expect(cuts).toBeGreaterThan(60);
    const reportOf = new Map<number, string>();
    for (const r of received) {
      expect(reportOf.get(r.sequence!) ?? r.timestamp, `sequence ${r.sequence} reused`).toBe(r.timestamp);
      reportOf.set(r.sequence!, r.timestamp!);
    }
    expect(reportOf.size).toBeGreaterThan(150); // enough numbers handed out around the cuts to mean something
  });
});
