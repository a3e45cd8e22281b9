// Deferral: the application says "busy until…" through AgentConfig.deferUpdate; the device reports the update
// as deferred (not a failure), asks again on its next check, and installs once it is free or once the maximum
// deferral has passed. On Node only: the XS bridge does not carry this hook yet.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deferral } from "../device/core/config";
import { assign, device, startWorld, TEST_AGENT, updateRecord, upload, type World } from "./helpers/e2e";

let w: World;
let v110: string;
beforeAll(async () => {
  w = await startWorld("node");
  await upload(w, "1.0.0");
  v110 = await upload(w, "1.1.0");
});
afterAll(() => w.close());

async function busyDevice(id: string, busy: () => Deferral | null, maxDeferralMs?: number) {
  const asked: string[] = [];
  const { dev } = await device(w, id, {
    extra: { agent: { ...TEST_AGENT, ...(maxDeferralMs === undefined ? {} : { maxDeferralMs }), deferUpdate: (o) => (asked.push(o.version), busy()) } },
  });
  return { dev, asked };
}

describe("deferral", () => {
  it("a deferral is reported as deferred, is not a failure, and ends in completion once the application is free", async () => {
    let busy = true;
    const { dev, asked } = await busyDevice("defer-1", () => (busy ? { until: Date.now() + 3_600_000, reason: "printing job 42" } : null));
    const { update_id } = await assign(w, "defer-1", v110);
    const first = await dev.runCycle();
    expect(first).toMatchObject({ outcome: { result: "busy" }, version: "1.0.0" });
    expect(dev.http.downloaded).toBe(0);
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "deferred", error: null });
    expect(w.h.logs.some((l) => l.includes("update_deferred") && l.includes("printing job 42"))).toBe(true);
    expect(await dev.agent!.checkNow()).toEqual({ result: "busy" }); // still busy on the next check: deferred again
    busy = false;
    expect(await dev.agent!.checkNow()).toMatchObject({ result: "restarting" });
    const done = await dev.runCycle();
    expect(done).toMatchObject({ version: "1.1.0", lastBoot: "confirmed" });
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "completed" });
    expect(asked).toEqual(["1.1.0", "1.1.0", "1.1.0"]);
  });

  it("a busy time already past does not defer", async () => {
    const { dev } = await busyDevice("defer-2", () => ({ until: Date.now() - 1, reason: "was busy" }));
    await assign(w, "defer-2", v110);
    expect((await dev.runCycle()).outcome).toMatchObject({ result: "restarting" });
  });

  it("the maximum deferral bounds an application that is always busy", async () => {
    const { dev } = await busyDevice("defer-3", () => ({ until: Date.now() + 3_600_000, reason: "always busy" }), 200);
    const { update_id } = await assign(w, "defer-3", v110);
    expect((await dev.runCycle()).outcome).toEqual({ result: "busy" });
    expect(await dev.agent!.checkNow()).toEqual({ result: "busy" });
    await new Promise((r) => setTimeout(r, 250));
    expect(await dev.agent!.checkNow()).toMatchObject({ result: "restarting" });
    expect(await dev.runCycle()).toMatchObject({ version: "1.1.0", lastBoot: "confirmed" });
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "completed" });
  });
});
