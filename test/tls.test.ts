// The device's TLS pinning rule (host-sim/device/pinned-tls.ts) against real TLS servers with node-forge certificates:
// the pinned CA connects; a wrong CA, a wrong host name, an expired certificate and a plain URL are each refused with
// their own code; two pinned CAs (a rotation) are both accepted. Each refusal test goes green only because of pinning.
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../device/core/config";
import { NodeHttpPort } from "../host-sim/device/node-http";
import { NodeMqttPort } from "../host-sim/device/node-mqtt";
import type { TlsRefusedError } from "../host-sim/device/pinned-tls";
import { generateCa, issueServerCert, type CertAuthority } from "../server-stub/tls";
import { device, startWorld, type World } from "./helpers/e2e";
import { registerDevice } from "./server/harness";
import { testTls } from "./helpers/tls";

const DAY = 86_400_000;
type Closer = () => Promise<void>;
const closers: Closer[] = [];

function listen(server: http.Server | tls.Server): Promise<number> {
  closers.push(() => new Promise((r) => ((server as http.Server).closeAllConnections?.(), server.close(() => r()))));
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r((server.address() as AddressInfo).port)));
}

const answer: http.RequestListener = (_req, res) => res.end("ok");
const httpsServer = (cert: { cert: string; key: string }) => listen(https.createServer(cert, answer));

/** "accepted", or the refusal's code (the error's message when it carries none). */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "accepted";
  } catch (e) {
    return (e as TlsRefusedError).code ?? (e as Error).message;
  }
}

const get = (url: string) => ({ method: "GET" as const, url, timeoutMs: 5000 });
async function streamOutcome(port: NodeHttpPort, url: string): Promise<string> {
  return outcome(port.stream(url, {}, 5000).then((s) => s.close()));
}

let pinned: CertAuthority;
let other: CertAuthority;
const url: Record<"good" | "otherCa" | "wrongHost" | "expired" | "plain", string> = { good: "", otherCa: "", wrongHost: "", expired: "", plain: "" };

beforeAll(async () => {
  const t = testTls();
  pinned = t.ca;
  other = generateCa("another CA");
  url.good = `https://127.0.0.1:${await httpsServer(t.server)}/`;
  url.otherCa = `https://127.0.0.1:${await httpsServer(issueServerCert(other, ["127.0.0.1"]))}/`;
  url.wrongHost = `https://127.0.0.1:${await httpsServer(issueServerCert(pinned, ["ota.example.com"]))}/`;
  url.expired = `https://127.0.0.1:${await httpsServer(issueServerCert(pinned, ["127.0.0.1"], { notBefore: new Date(Date.now() - 400 * DAY), days: 30 }))}/`;
  url.plain = `http://127.0.0.1:${await listen(http.createServer(answer))}/`;
}, 60_000);

afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

describe("HTTPS with pinned CAs (NodeHttpPort, the simulator's device port)", () => {
  it("connects to a server whose certificate chains to the pinned CA, by IP and by name", async () => {
    const port = new NodeHttpPort({}, undefined, { cas: [pinned.cert] });
    expect((await port.request(get(url.good))).body).toBe("ok");
    expect((await port.request(get(url.good.replace("127.0.0.1", "localhost")))).status).toBe(200);
    expect(await streamOutcome(port, url.good)).toBe("accepted");
  });

  it("refuses a certificate from another CA: TLS_UNTRUSTED_CA", async () => {
    const port = new NodeHttpPort({}, undefined, { cas: [pinned.cert] });
    expect(await outcome(port.request(get(url.otherCa)))).toBe("TLS_UNTRUSTED_CA");
    expect(await streamOutcome(port, url.otherCa)).toBe("TLS_UNTRUSTED_CA");
  });

  it("refuses a certificate for another host name: TLS_HOSTNAME_MISMATCH", async () => {
    const port = new NodeHttpPort({}, undefined, { cas: [pinned.cert] });
    expect(await outcome(port.request(get(url.wrongHost)))).toBe("TLS_HOSTNAME_MISMATCH");
    expect(await streamOutcome(port, url.wrongHost)).toBe("TLS_HOSTNAME_MISMATCH");
  });

  it("refuses an expired certificate: TLS_CERT_EXPIRED", async () => {
    const port = new NodeHttpPort({}, undefined, { cas: [pinned.cert] });
    expect(await outcome(port.request(get(url.expired)))).toBe("TLS_CERT_EXPIRED");
    expect(await streamOutcome(port, url.expired)).toBe("TLS_CERT_EXPIRED");
  });

  it("refuses plain http:// while CAs are pinned: TLS_REQUIRED (and an agent with a plain server URL does not start)", async () => {
    const port = new NodeHttpPort({}, undefined, { cas: [pinned.cert] });
    expect(await outcome(port.request(get(url.plain)))).toBe("TLS_REQUIRED");
    expect(await streamOutcome(port, url.plain)).toBe("TLS_REQUIRED");
    const config = { deviceId: "d", deviceModel: "m", hardwareVersion: "1", apiKey: "k", trustedKeys: [{ publicKey: "x" }], pinnedCas: [pinned.cert] };
    expect(() => resolveConfig({ ...config, serverUrl: url.plain })).toThrow(/^TLS_REQUIRED/);
    expect(resolveConfig({ ...config, serverUrl: url.good }).pinnedCas).toEqual([pinned.cert]);
  });

  it("two pinned CAs (a rotation): servers of either CA are accepted", async () => {
    const port = new NodeHttpPort({}, undefined, { cas: [other.cert, pinned.cert] });
    expect(await outcome(port.request(get(url.good)))).toBe("accepted");
    expect(await outcome(port.request(get(url.otherCa)))).toBe("accepted");
    expect(() => new NodeHttpPort({}, undefined, { cas: [] })).toThrow(/one CA/);
  });
});

describe("MQTT over TLS with pinned CAs, and the refusal in the agent's log", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld("node");
  }, 60_000);
  afterAll(async () => {
    await w?.close();
  });

  it("the server's MQTTS broker takes a device pinned to its CA; another CA and mqtt:// are refused", async () => {
    expect(w.h.server.mqttUrl).toMatch(/^mqtts:/);
    const key = await registerDevice(w.h, "mqtt-tls-1");
    const ok = new NodeMqttPort(w.h.server.mqttUrl!, "mqtt-tls-1", key, { cas: [pinned.cert] });
    const wrongCa = new NodeMqttPort(w.h.server.mqttUrl!, "mqtt-tls-1", key, { cas: [other.cert] });
    const plain = new NodeMqttPort(w.h.server.mqttUrl!.replace("mqtts:", "mqtt:"), "mqtt-tls-1", key, { cas: [pinned.cert] });
    try {
      expect(await outcome(ok.connect([]))).toBe("accepted");
      expect(await outcome(wrongCa.connect([]))).toBe("TLS_UNTRUSTED_CA");
      expect(await outcome(plain.connect([]))).toBe("TLS_REQUIRED");
    } finally {
      await Promise.all([ok.close(), wrongCa.close(), plain.close()]);
    }
  });

  it("a device that pins another CA does not talk to the server and logs TLS_UNTRUSTED_CA", async () => {
    const { dev } = await device(w, "tls-wrong-ca", { extra: { tlsCas: [other.cert] } });
    const r = await dev.runCycle();
    expect(r.outcome).toMatchObject({ result: "unreachable", message: expect.stringMatching(/^TLS_UNTRUSTED_CA: /) });
    expect(dev.logs.some((l) => l.includes("server unreachable") && l.includes("TLS_UNTRUSTED_CA"))).toBe(true);
    expect(r.version).toBe("1.0.0");
  });
});
