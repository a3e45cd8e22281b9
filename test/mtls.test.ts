// Mutual TLS (--device-certs): a device's client certificate, issued by the server's CA and recorded
// (ota-server device-cert), stands for that device on HTTPS and MQTTS instead of an API key; it cannot act for
// another device or as an operator; a certificate of another CA, a revoked device's certificate and a certificate
// the server never recorded are refused.
import https from "node:https";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { availableUpdatesPath, ROUTES } from "../device/protocol";
import { NodeMqttPort } from "../host-sim/device/node-mqtt";
import { SimDevice } from "../host-sim/device/sim-device";
import { ManualClock } from "../server-stub/clock";
import { fingerprint256, generateCa, issueDeviceCert, type CertAuthority } from "../server-stub/tls";
import { image, MODEL, TEST_AGENT } from "./helpers/e2e";
import { testTls } from "./helpers/tls";
import { api, asAdmin, eventually, registerDevice, startHarness, uploadFirmware, type Harness } from "./server/harness";
import { createDeviceFlash, programPartition } from "../host-sim/device-flash";
import { loadPartitionTable } from "../host-sim/esp/esp-ota";
import { findByName } from "../host-sim/esp/partition-table";

type Cert = { cert: string; key: string };
let h: Harness;
let ca: CertAuthority;
let certA: Cert;
let certB: Cert;
let foreign: Cert;

beforeAll(async () => {
  const t = testTls();
  ca = t.ca;
  h = await startHarness({ tls: { ...t.server, clientCa: ca.cert } }, { dataDir: mkdtempSync(join(tmpdir(), "ota-mtls-")), clock: new ManualClock(Date.now()) }, ca.cert);
  for (const id of ["mtls-a", "mtls-b", "mtls-c"]) await registerDevice(h, id, { device_model: MODEL, hardware_version: "1.0", current_version: "1.0.0" });
  certA = issueDeviceCert(ca, "mtls-a");
  certB = issueDeviceCert(ca, "mtls-b");
  // Another CA's certificate for mtls-c, recorded as if an operator had been handed it: the CA check alone refuses it.
  foreign = issueDeviceCert(generateCa("not the server's CA"), "mtls-c");
  for (const [id, c] of [["mtls-a", certA], ["mtls-b", certB], ["mtls-c", foreign]] as const) h.server.ctx.apiKeys.addDeviceCert(id, fingerprint256(c.cert));
}, 120_000);

afterAll(async () => {
  await h?.close();
});

/** The status of a GET to the server over TLS, presenting `cert` (or none), with any extra headers. */
function get(path: string, cert: Cert | null, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(h.server.url + path, { ca: ca.cert, ...(cert ?? {}), headers, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "accepted";
  } catch (e) {
    return (e as Error).message;
  }
}

function simDevice(id: string, clientCert: Cert | undefined): SimDevice {
  const flash = createDeviceFlash();
  programPartition(flash, findByName(loadPartitionTable(flash), "ota_0")!, image("1.0.0"));
  const keys = h.server.ctx.keys.list().map((k) => ({ keyId: k.key_id, publicKey: k.public_key }));
  return new SimDevice({ id, flash, serverUrl: h.server.url, apiKey: "", trustedKeys: keys, tlsCas: [ca.cert], ...(clientCert ? { clientCert } : {}), runtime: "node", agent: TEST_AGENT });
}

describe("mutual TLS: a device certificate instead of an API key", () => {
  it("a device with its certificate and no API key updates; without the certificate it is refused", async () => {
    const fw = await uploadFirmware(h, { version: "1.1.0", device_model: MODEL, name: "fw 1.1.0" }, image("1.1.0"));
    const assigned = await api(h, "POST", `/api/v1/devices/mtls-a/update`, { ...asAdmin(h), body: { firmware_id: fw.firmware_id } });
    expect(assigned.status).toBeLessThan(300);

    const bare = simDevice("mtls-a", undefined);
    const refused = await bare.runCycle();
    expect(refused.version).toBe("1.0.0");
    expect(JSON.stringify(refused.outcome)).toMatch(/401/);
    await bare.powerOff();

    const dev = simDevice("mtls-a", certA);
    const r = await dev.runCycle();
    expect(r.version).toBe("1.1.0");
    await dev.powerOff();
  }, 60_000);

  it("device A's certificate cannot act for device B, nor on operator routes", async () => {
    expect(await get(availableUpdatesPath("mtls-a"), certA)).toBe(200);
    expect(await get(availableUpdatesPath("mtls-b"), certA)).toBe(403);
    expect(await get(ROUTES.devices, certA)).toBe(403);
    const asB = new NodeMqttPort(h.server.mqttUrl!, "mtls-b", "", { cas: [ca.cert], clientCert: certA });
    try {
      expect(await outcome(asB.connect([]))).toMatch(/^MQTT login refused: .*Bad username or password/);
    } finally {
      await asB.close();
    }
  });

  it("a certificate from another CA is refused, even when recorded for its device", async () => {
    expect(await get(availableUpdatesPath("mtls-c"), foreign)).toBe(401);
    const mqtt = new NodeMqttPort(h.server.mqttUrl!, "mtls-c", "", { cas: [ca.cert], clientCert: foreign });
    try {
      expect(await outcome(mqtt.connect([]))).toMatch(/^MQTT login refused: .*Bad username or password/);
    } finally {
      await mqtt.close();
    }
  });

  it("the certificate's credential row is no API key: its fingerprint in X-API-Key is refused", async () => {
    expect(await get(availableUpdatesPath("mtls-b"), null, { "x-api-key": `x509:${fingerprint256(certB.cert)}` })).toBe(401);
  });

  it("revoking the device refuses its certificate and closes its MQTT session", async () => {
    const mqtt = new NodeMqttPort(h.server.mqttUrl!, "mtls-b", "", { cas: [ca.cert], clientCert: certB });
    try {
      expect(await outcome(mqtt.connect([]))).toBe("accepted");
      expect(await get(availableUpdatesPath("mtls-b"), certB)).toBe(200);
      const revoked = await api(h, "POST", `/api/v1/devices/mtls-b/revoke`, asAdmin(h));
      expect(revoked.status).toBe(200);
      expect(await get(availableUpdatesPath("mtls-b"), certB)).toBe(401);
      await eventually(() => !mqtt.connected());
    } finally {
      await mqtt.close();
    }
  });
});
