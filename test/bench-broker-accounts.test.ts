// bench/broker-accounts.ts: a fleet's Mosquitto accounts written ahead must be what the server's own provisioning
// leaves: Mosquitto accepts each device's API key (and nothing else), keeps it to its own topics, and the database
// rows say every key is on the broker.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { addDevicesToDynsecFile, confirmBrokerAccounts } from "../bench/broker-accounts";
import { openDb } from "../server-stub/db";
import { mosquittoAvailable, startMosquitto, type Mosquitto } from "./server/mosquitto";

const SUITE = "test/bench-broker-accounts.test.ts";
const devices = [{ id: "pre-1", apiKey: "key-one-0123456789" }, { id: "pre-2", apiKey: "key-two-0123456789" }];

describe.skipIf(!mosquittoAvailable(SUITE))("broker accounts written ahead into Mosquitto's dynamic-security file", () => {
  let broker: Mosquitto | null = null;
  const open: MqttClient[] = [];
  afterAll(async () => {
    for (const c of open) c.end(true);
    await broker?.close();
  });
  const login = async (username: string, password: string) => {
    const c = await mqtt.connectAsync(broker!.url, { username, password, reconnectPeriod: 0, connectTimeout: 3000 });
    open.push(c);
    return c;
  };

  it("lets each device log in with its API key, to its own command topic only", async () => {
    broker = await startMosquitto();
    await broker.stop();
    addDevicesToDynsecFile(broker.dynsecFile, devices);
    await broker.start();
    const d1 = await login("pre-1", "key-one-0123456789");
    await expect(d1.subscribeAsync("devices/pre-1/ota", { qos: 1 })).resolves.toMatchObject([{ qos: 1 }]);
    await expect(d1.subscribeAsync("devices/pre-2/ota", { qos: 1 })).rejects.toMatchObject({ packet: { granted: [128] } });
    await expect(login("pre-2", "key-one-0123456789")).rejects.toThrow(/Not authorized|Bad User Name or Password/i);
    await expect(login("pre-2", "key-two-0123456789")).resolves.toBeTruthy();
  });
});

describe("broker accounts in the database", () => {
  it("records each key's hash as confirmed (nothing left for the server to push)", () => {
    const dir = mkdtempSync(join(tmpdir(), "ota-broker-accounts-"));
    const db = openDb(join(dir, "ota.sqlite"));
    try {
      confirmBrokerAccounts(db, devices, 1234);
      const rows = db.prepare("SELECT device_id, key_hash, sealed_secret, updated_at FROM broker_accounts ORDER BY device_id").all();
      expect(rows).toEqual(devices.map((d) => ({ device_id: d.id, key_hash: createHash("sha256").update(d.apiKey).digest("hex"), sealed_secret: null, updated_at: 1234 })));
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
