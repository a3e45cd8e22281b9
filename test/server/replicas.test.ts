// Two ota-server replicas on one PostgreSQL: one engine (leader election), every route on either, events and device
// notifications reaching whichever replica the client is on, and a fail-over when the leader is killed (-9).
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../server-stub/clock";
import { api, asAdmin, connectMqtt, eventually, nextMessage, randomBytes, startHarness, type Harness } from "./harness";
import { campaign, createCampaign, devices, settle, setupFleet, start, type Fleet } from "./fleet";
import { openSse } from "./sse";
import { pgMode, testDatabase, type TestDatabase } from "../support/test-database";
import { runFailover } from "../../bench/scale-failover";
import { withReplicas } from "../../bench/scale-replicas";

const skip = !pgMode;
if (skip) console.log("replicas: skipped, PostgreSQL only (OTA_TEST_DB=pg, npm run test:pg)");

/** One database for two servers (the harness gives each server its own). */
async function replicaDatabase(): Promise<TestDatabase & { databaseUrl: string }> {
  const db = await testDatabase();
  return { ...db, databaseUrl: db.databaseUrl! };
}

/** A scrape's value of a metric without labels. */
async function metric(h: Harness, name: string): Promise<number> {
  const text = (await api(h, "GET", "/metrics")).body as string;
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
}

describe.skipIf(skip)("two replicas on one PostgreSQL", () => {
  let a: Harness;
  let b: Harness;
  let db: TestDatabase & { databaseUrl: string };
  let f: Fleet; // r01…r04 for the campaign, r05 for SSE, r06 for MQTT
  const clock = new ManualClock(); // one clock for both: an advance is an engine tick on the leader only
  // Shared blobs on another filesystem than the data dirs (tmpfs), as a network share would be: no rename across.
  const blobDir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "ota-replica-blobs-"));

  beforeAll(async () => {
    db = await replicaDatabase();
    a = await startHarness({ databaseUrl: db.databaseUrl, clock, blobDir });
    b = await startHarness({ databaseUrl: db.databaseUrl, clock, blobDir });
    f = await setupFleet(b, 6, "r");
  });
  let aClosed = false;
  afterAll(async () => {
    await b?.close();
    if (!aClosed) await a?.close();
    await db?.dispose();
    rmSync(blobDir, { recursive: true, force: true });
  });

  it("elects exactly one engine leader, and /metrics says which", async () => {
    expect(a.server.leadership.check()).toBe(true); // started first
    expect(b.server.leadership.check()).toBe(false);
    expect(await metric(a, "ota_engine_leader")).toBe(1);
    expect(await metric(b, "ota_engine_leader")).toBe(0);
    expect(a.logs.join("")).toMatch(/engine_leadership_gained replica=/);
  });

  it("shares the token secret: a token B issued works on A", async () => {
    expect((await api(a, "GET", "/api/v1/campaigns", { token: b.admin })).status).toBe(200);
  });

  it("firmware uploaded through B downloads from A, from the shared blob dir", async () => {
    const res = await a.fetch(`${a.server.url}/api/v1/firmware/${f.fwNew.firmware_id}/download`, { headers: { authorization: `Bearer ${a.admin}` } });
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(randomBytes(3000, 12)); // setupFleet's 1.2.0
    const files = readdirSync(blobDir, { recursive: true }) as string[];
    expect(files.filter((p) => p.endsWith(f.fwNew.checksum_sha256))).toHaveLength(1);
    expect(files.filter((p) => p.endsWith(".part"))).toEqual([]);
  });

  it("a campaign created and started on B runs on A's engine; status reports sent to B advance it", async () => {
    const id = await createCampaign(b, { firmware_id: f.fwNew.firmware_id, deployment_strategy: "staged", batch_size: 2, target_devices: f.ids.slice(0, 4) });
    await start(b, id); // B is a follower: its tick goes to A as a notification
    await eventually(async () => (await devices(b, id)).filter((d) => d.state === "in_progress").length === 2);
    expect(a.logs.join("")).toMatch(new RegExp(`campaign_stage_started campaign_id=${id}`));
    expect(b.logs.join("")).not.toMatch(/campaign_stage_started/);
    for (let stage = 0; stage < 2; stage++) {
      expect(await settle(b, f, id)).toHaveLength(2); // B records the reports; its kick reaches A
      await eventually(async () => (await devices(a, id)).filter((d) => d.state === "in_progress").length === 2 || (await campaign(a, id)).status === "completed");
    }
    await eventually(async () => (await campaign(b, id)).status === "completed");
    expect((await devices(b, id)).map((d) => d.state)).toEqual(["completed", "completed", "completed", "completed"]);
  });

  it("an SSE client on A sees an event recorded on B", async () => {
    const sse = await openSse(a, "/api/v1/events", { token: a.admin });
    try {
      const r = await api(b, "POST", "/api/v1/devices/r05/update", { ...asAdmin(b), body: { firmware_id: f.fwNew.firmware_id } });
      expect(r.status).toBe(201);
      const frames = await sse.until((fs) => fs.some((f) => f.data.update_id === r.body.update_id));
      expect(frames.find((f) => f.data.update_id === r.body.update_id)!.event).toBe("update.scheduled");
    } finally {
      sse.close();
    }
  });

  it("a device connected to A's broker hears of an update created through B", async () => {
    const client = await connectMqtt(a, "r06", f.keys.get("r06")!);
    try {
      await client.subscribeAsync("devices/r06/ota", { qos: 1 });
      const heard = nextMessage(client, "devices/r06/ota", 5000);
      const r = await api(b, "POST", "/api/v1/devices/r06/update", { ...asAdmin(b), body: { firmware_id: f.fwNew.firmware_id } });
      expect(r.status).toBe(201);
      expect(await heard).toMatchObject({ action: "update_available", update_id: r.body.update_id });
    } finally {
      await client.endAsync();
    }
  });

  it("a leader that shuts down hands the engine over at once, before its downloads drain", async () => {
    a.server.leadership.stop(); // what close() does first
    expect(b.server.leadership.check()).toBe(true);
    expect(a.server.leadership.check()).toBe(false);
    expect(await metric(b, "ota_engine_leader")).toBe(1);
    expect(a.logs.join("")).toMatch(/engine_leadership_released replica=/);
    aClosed = true;
    await a.close();
  });
});

describe.skipIf(skip)("two replica processes", () => {
  it("one device asked for an update on both replicas at once gets one: the other request is refused (row lock)", async () => {
    const db = await replicaDatabase();
    try {
      await withReplicas(db.databaseUrl, 30, async ({ a, b, op, firmwareId, keys, db: pgc }) => {
        const ask = (url: string, id: string) => fetch(`${url}/api/v1/devices/${id}/update`, {
          method: "POST", headers: { ...op, "content-type": "application/json" }, body: JSON.stringify({ firmware_id: firmwareId }),
        }).then((res) => res.status);
        const statuses: number[] = [];
        for (const id of keys.keys()) statuses.push(...(await Promise.all([ask(a.url, id), ask(b.url, id)]))); // both idle: the two requests overlap
        const doubled = (await pgc.query("SELECT device_id FROM updates WHERE status = 'scheduled' GROUP BY device_id HAVING COUNT(*) > 1")).rows;
        expect(doubled).toEqual([]);
        expect(statuses.filter((s) => s === 201)).toHaveLength(30);
        expect(statuses.filter((s) => s === 409)).toHaveLength(30);
      });
    } finally {
      await db.dispose();
    }
  }, 120_000);

  it("kill -9 of the leader mid-campaign: the other replica's engine finishes it, no device record or event lost", async () => {
    const db = await replicaDatabase();
    const r = await runFailover({ databaseUrl: db.databaseUrl, devices: 12, batchSize: 4 }).finally(() => db.dispose());
    expect(r.leaderBefore).not.toBe(r.leaderAfter);
    expect(r.failoverMs).toBeLessThan(5000);
    expect(r.status).toBe("completed");
    expect(r.lost).toEqual([]);
  }, 120_000);
});
