import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import nacl from "tweetnacl";
import { base64Encode } from "../../device/protocol";
import { keyIdFor } from "../../server-stub/signing/keystore";
import { api, asAdmin, connectMqtt, eventually, nextMessage, randomBytes, registerDevice, startHarness, uploadFirmware, type Harness } from "./harness";

describe("--mqtt-url: an external broker", () => {
  // Server A's embedded broker stands in for Mosquitto; server B uses it as an external broker.
  let broker: Harness;
  let b: Harness;
  beforeAll(async () => {
    broker = await startHarness();
    const url = `mqtt://ops:${broker.admin}@127.0.0.1:${broker.server.mqttPort}`;
    b = await startHarness({ mqttUrl: url, mqttPort: null, mqttProvisioning: "none" });
  });
  afterAll(async () => {
    await b.close();
    await broker.close();
  });

  it("publishes notifications to it and takes status reports from it", async () => {
    expect(b.server.mqttPort).toBeNull();
    expect(b.server.mqttUrl).toBe(`mqtt://127.0.0.1:${broker.server.mqttPort}`); // the account's password stays out of logs and /health
    const fw = await uploadFirmware(b, { version: "1.2.0" }, randomBytes(1000, 5));
    await registerDevice(b, "ext1", { current_version: "1.0.0" });
    const brokerKey = await registerDevice(broker, "ext1"); // the broker's own credentials for the device
    const device = await connectMqtt(broker, "ext1", brokerKey);
    try {
      await device.subscribeAsync("devices/ext1/ota", { qos: 1 });
      const msg = nextMessage(device, "devices/ext1/ota");
      const u = (await api(b, "POST", "/api/v1/devices/ext1/update", { ...asAdmin(b), body: { firmware_id: fw.firmware_id } })).body;
      expect(await msg).toMatchObject({ action: "update_available", update_id: u.update_id });
      await device.publishAsync("devices/ext1/ota/status", JSON.stringify({ update_id: u.update_id, status: "installing", progress: 70 }), { qos: 1 });
      await eventually(async () => (await api(b, "GET", `/api/v1/updates/${u.update_id}`, asAdmin(b))).body.status === "installing");
    } finally {
      await device.endAsync();
    }
  });
});

describe("--signing-key", () => {
  it("imports a seed file (hex or base64) and signs with it", async () => {
    const seed = new Uint8Array(32).map((_, i) => i * 7);
    const pair = nacl.sign.keyPair.fromSeed(seed);
    const dir = mkdtempSync(join(tmpdir(), "ota-key-"));
    try {
      for (const text of [Buffer.from(seed).toString("hex"), base64Encode(seed)]) {
        writeFileSync(join(dir, "seed"), text + "\n");
        const h = await startHarness({ signingKeyFile: join(dir, "seed") });
        try {
          const keys = (await api(h, "GET", "/api/v1/keys", asAdmin(h))).body.keys;
          // The imported ed25519 key, and the P-256 key the server makes for its second signature.
          expect(keys).toEqual([
            expect.objectContaining({ key_id: keyIdFor(pair.publicKey), public_key: base64Encode(pair.publicKey), retired: false, algorithm: "ed25519" }),
            expect.objectContaining({ retired: false, algorithm: "ecdsa-p256-sha256" }),
          ]);
        } finally {
          await h.close();
        }
      }
      writeFileSync(join(dir, "bad"), "too short");
      await expect(startHarness({ signingKeyFile: join(dir, "bad") })).rejects.toThrow(/32-byte seed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
