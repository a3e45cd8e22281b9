// Bugs the reliability harness found, each pinned by the smallest scenario that shows it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NorFlash } from "../../host-sim/flash/nor-flash";
import { appImage, baseFlash, forkDevice, manifestFor, partitionOf, serveRange, signer, UpdateServer } from "./support";
import type { Scenario } from "./support";

describe("harness regressions", () => {
  let server: UpdateServer;
  let base: NorFlash;
  const sig = signer();
  const bytes = appImage("1.1.0");
  beforeAll(async () => {
    server = await UpdateServer.start();
    server.images.set("v110", bytes);
    base = await baseFlash(server, [sig.trusted]);
  });
  afterAll(async () => server?.close());

  const offer = (key: string, scenario: Scenario = {}) => {
    const envelope = sig.sign(manifestFor(server, "v110", bytes, "1.1.0"));
    server.scenarios.set(key, { envelope, ...scenario });
    return envelope;
  };

  it("download: a server whose file ends early (no Content-Length, 416 on resume) fails with DOWNLOAD_FAILED instead of looping", async () => {
    offer("short", {
      download: (q, res, b) => {
        const short = b!.subarray(0, b!.length - 5000);
        if (q.headers.range) return serveRange(q, res, short);
        res.writeHead(200, { "content-type": "application/octet-stream" });
        res.write(Buffer.from(short));
        res.end();
      },
    });
    const { dev } = forkDevice(base, server, [sig.trusted], "short");
    const r = await dev.runCycle();
    expect(r.outcome).toMatchObject({ result: "failed", code: "DOWNLOAD_FAILED" });
    expect(r).toMatchObject({ slot: "ota_0", version: "1.0.0" });
    expect(dev.http.downloaded).toBeLessThan(10 * bytes.length);
  }, 10_000);

  it("download: a 416 to a request from byte 0 is retried with backoff and ends in DOWNLOAD_FAILED", async () => {
    offer("416", { download: (_q, res) => res.writeHead(416).end() });
    const { dev } = forkDevice(base, server, [sig.trusted], "416");
    const r = await dev.runCycle();
    expect(r.outcome).toMatchObject({ result: "failed", code: "DOWNLOAD_FAILED" });
    expect(dev.http.requests).toBeLessThan(20);
  }, 10_000);

  it("agent: an envelope refused before its signature is checked (missing signature) is still reported against its update id", async () => {
    const envelope = offer("nosig");
    delete envelope.signature;
    const { dev } = forkDevice(base, server, [sig.trusted], "nosig");
    const r = await dev.runCycle();
    expect(r.outcome).toMatchObject({ result: "failed", code: "SIGNATURE_INVALID" });
    const id = (envelope.manifest as { update_id: string }).update_id;
    expect(server.reportsOf("nosig").map((x) => [x.updateId, x.body.status, x.body.error_code])).toEqual([[id, "failed", "SIGNATURE_INVALID"]]);
  });

  it("simulator: a power cut during the bootloader's own otadata write (NEW → PENDING_VERIFY) is a power cut, not a thrown error", async () => {
    offer("bl-ref");
    const otadata = partitionOf(base, "otadata");
    const ops: number[] = [];
    const ref = forkDevice(base, server, [sig.trusted], "bl-ref", { flash: { onOp: (op) => ops.push(op.offset) } });
    await ref.dev.runCycle();
    // Otadata operations: set_boot_partition (erase, write), then the bootloader's NEW → PENDING_VERIFY (erase, write).
    const inOtadata = ops.map((o, i) => [o, i + 1] as const).filter(([o]) => o >= otadata.offset && o < otadata.offset + otadata.size);
    const k = inOtadata[2]![1];
    offer("bl-cut");
    const { dev, flash } = forkDevice(base, server, [sig.trusted], "bl-cut");
    flash.armFaults({ cutAfter: k });
    const r = await dev.runCycle();
    expect(r).toMatchObject({ bricked: false });
    expect(["1.0.0", "1.1.0"]).toContain(r.version);
  });

  it("simulator: a stall injected in the last chunk of a body is noticed (the stream had already ended)", async () => {
    offer("stall-end");
    const { dev } = forkDevice(base, server, [sig.trusted], "stall-end", { extra: { network: { stallAt: [bytes.length - 100] } } });
    const r = await dev.runCycle();
    expect(r).toMatchObject({ version: "1.1.0", lastBoot: "confirmed" });
  }, 10_000);
});
