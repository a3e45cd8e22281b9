// CDN (the seed's cdn_config): manifests point at the CDN and carry a fallback; a device whose CDN fails
// falls back on its own; a CDN cannot change what is installed (the signed sha256 covers the bytes);
// downloads carry Cache-Control.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AgentRuntime } from "../host-sim/device/sim-device";
import { firmwareDownloadPath, type SignedUpdateEnvelope } from "../device/protocol";
import { DOWNLOAD_CACHE_CONTROL } from "../server-stub/routes/firmware";
import { assign, device, image, inspect, startWorld, updateRecord, upload, type World } from "./helpers/e2e";
import { api, asAdmin } from "./server/harness";

/** A "CDN" that answers every request with `status` and, for 200, the 1.1.0 image with its last byte changed. */
async function fakeCdn(status: number): Promise<{ url: string; hits: number; close(): Promise<void> }> {
  const cdn = { url: "", hits: 0, close: () => new Promise<void>((r) => server.close(() => r())) };
  const server = http.createServer((_req, res) => {
    cdn.hits++;
    if (status !== 200) return void res.writeHead(status).end();
    const tampered = Buffer.from(image("1.1.0"));
    tampered[tampered.length - 1]! ^= 1;
    res.writeHead(200, { "content-length": String(tampered.length) }).end(tampered);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cdn.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cdn`;
  return cdn;
}

const SIZE = image("1.1.0").length;

describe.each(["node", "xs"] as AgentRuntime[])("CDN on %s", (runtime) => {
  let w: World | undefined;
  let cdn: Awaited<ReturnType<typeof fakeCdn>> | undefined;
  afterEach(async () => {
    await w?.close();
    await cdn?.close();
    w = cdn = undefined;
  });

  async function world(cdnStatus: number) {
    cdn = await fakeCdn(cdnStatus); // a plain-HTTP mirror, so the world is plain too (pinned devices refuse http://: test/tls.test.ts)
    w = await startWorld(runtime, { tls: false, deltas: false, cdn: { enabled: true, base_url: cdn.url, cache_control: "public, max-age=600", fallback_url: null } });
    await upload(w, "1.0.0");
    const v110 = await upload(w, "1.1.0");
    const { dev } = await device(w, `${runtime}-cdn-${cdnStatus}`);
    const { update_id } = await assign(w, dev.options.id, v110);
    return { dev, update_id, v110 };
  }

  it("the manifest names the CDN and the origin as fallback; a CDN that refuses (404) is left for the fallback", async () => {
    const { dev, update_id, v110 } = await world(404);
    const env = (await api<SignedUpdateEnvelope>(w!.h, "GET", `/api/v1/devices/${dev.options.id}/available-updates`, { apiKey: dev.options.apiKey })).body;
    expect(env.manifest.download_url).toBe(cdn!.url + firmwareDownloadPath(v110));
    expect(env.manifest.fallback_url).toBe(w!.proxy.url + firmwareDownloadPath(v110));
    const r = await dev.runCycle();
    expect(r).toMatchObject({ bricked: false, version: "1.1.0", lastBoot: "confirmed" });
    expect(dev.http.downloaded).toBe(SIZE); // the 404 cost no bytes
    expect(cdn!.hits).toBe(1);
    expect((await updateRecord(w!, update_id)).status).toBe("completed");
    expect((await api(w!.h, "GET", firmwareDownloadPath(v110), asAdmin(w!.h))).headers.get("cache-control")).toBe("public, max-age=600");
  });

  it("a CDN that serves other bytes cannot change what is installed: CHECKSUM_MISMATCH, the old image runs", async () => {
    const { dev, update_id } = await world(200);
    const r = await dev.runCycle();
    expect(r).toMatchObject({ bricked: false, version: "1.0.0" });
    expect(inspect(dev.flash).bootSlot).toBe("ota_0");
    expect(r.outcome).toMatchObject({ result: "failed", code: "CHECKSUM_MISMATCH" });
    expect(await updateRecord(w!, update_id)).toMatchObject({ status: "failed" });
  });
});

describe("download headers", () => {
  let w: World;
  let fw: string;
  beforeAll(async () => {
    w = await startWorld("node", { tls: false, deltas: false });
    fw = await upload(w, "1.1.0");
  });
  afterAll(() => w.close());

  it("Cache-Control on downloads: private by default (the answer depends on the credential)", async () => {
    const r = await api(w.h, "GET", firmwareDownloadPath(fw), asAdmin(w.h));
    expect([r.status, r.headers.get("cache-control")]).toEqual([200, DOWNLOAD_CACHE_CONTROL]);
  });
});
