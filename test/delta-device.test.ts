// The agent's side of delta updates against a server we control (test/faults/support.ts), on Node and XS:
// a delta whose base is not the running image falls back to the full image and says why; a patch cut
// mid-stream resumes with Range; a malformed patch and a patch that builds the wrong image never boot.
import type http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRuntime } from "../host-sim/device/sim-device";
import type { NorFlash } from "../host-sim/flash/nor-flash";
import { encodeHeader, encodeOp, OP_COPY, OP_END } from "../device/protocol/delta";
import { minorChange } from "../esp-image/minor-change";
import { buildPatch } from "../server-stub/delta/diff";
import type { FlashOp } from "../host-sim/flash/nor-flash";
import { appImage, baseFlash, forkDevice, judgeFlash, manifestFor, partitionOf, serveRange, sha256Hex, signer, UpdateServer } from "./faults/support";

const RUNTIMES: AgentRuntime[] = ["node", "xs"];

describe.each(RUNTIMES)("delta apply on %s", (runtime) => {
  let server: UpdateServer;
  let base: NorFlash;
  const sig = signer();
  const old = appImage("1.0.0", "healthy", 200 * 1024);
  let n = 0;

  beforeAll(async () => {
    server = await UpdateServer.start();
    base = await baseFlash(server, [sig.trusted], old);
  });
  afterAll(async () => server?.close());

  /** A release of `bytes` whose manifest offers `patch` (from the factory image unless `baseSha` says otherwise). */
  function offer(bytes: Uint8Array, patch: Uint8Array, baseSha = sha256Hex(old)) {
    const name = `${runtime}-${++n}`;
    server.images.set(name, bytes);
    server.images.set(`${name}.patch`, patch);
    const version = `1.${n}.0`;
    const delta = { base_sha256: baseSha, patch_url: `${server.url}/fw/${name}.patch`, patch_size: patch.length, patch_sha256: sha256Hex(patch) };
    return { name, envelope: sig.sign(manifestFor(server, name, bytes, version, { delta })), version };
  }

  async function run(key: string, envelope: Record<string, unknown>, download?: (req: http.IncomingMessage, res: http.ServerResponse, bytes?: Uint8Array) => void) {
    server.scenarios.set(key, { envelope, ...(download ? { download } : {}) });
    const { dev, flash } = forkDevice(base, server, [sig.trusted], key, { extra: { runtime } });
    const r = await dev.runCycle();
    return { r, flash, dev, reports: server.reportsOf(key).map((x) => x.body) };
  }

  it("a base that does not match the running image: the full image, with the reason reported", async () => {
    const n0 = n + 1;
    const bytes = minorChange(old, `1.${n0}.0`);
    const { envelope } = offer(bytes, buildPatch(old, bytes), "ab".repeat(32));
    const { r, dev, reports } = await run(`${runtime}-mismatch`, envelope);
    expect(r).toMatchObject({ bricked: false, version: `1.${n0}.0`, lastBoot: "confirmed" });
    // The image, not the patch (a retry after a stall on this loaded machine may fetch a little twice).
    expect(dev.http.downloaded).toBeGreaterThanOrEqual(bytes.length);
    expect(dev.http.downloaded).toBeLessThan(1.1 * bytes.length);
    expect(reports.find((x) => x.status === "downloading")).toMatchObject({ delivery: "full", delivery_note: expect.stringMatching(/delta refused: the patch starts from image abababababab/) });
  });

  it("a patch cut mid-stream resumes with Range and builds the image", async () => {
    const bytes = minorChange(old, `1.${n + 1}.0`);
    const patch = buildPatch(old, bytes);
    const { envelope, version, name } = offer(bytes, patch);
    expect(patch.length).toBeGreaterThan(4096 + 500);
    let cuts = 0;
    const ranges: string[] = [];
    const { r, dev, reports } = await run(`${runtime}-cut`, envelope, (req, res, body) => {
      ranges.push(String(req.headers.range ?? "none"));
      if (!req.url?.endsWith(".patch") || cuts > 0) return serveRange(req, res, body!);
      cuts++;
      // Past the first 4 KiB buffer, so the device has taken some of the patch when the connection drops.
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(body!.length) });
      res.write(Buffer.from(body!.subarray(0, 4096 + 400)), () => setTimeout(() => res.destroy(), 50));
    });
    expect(name).toContain(runtime);
    expect(r).toMatchObject({ bricked: false, version, lastBoot: "confirmed" });
    expect(cuts).toBe(1);
    expect(ranges).toEqual(["none", "bytes=4096-"]);
    // At most the bytes of the buffer the cut left unfilled are fetched twice.
    expect(dev.http.downloaded).toBeLessThan(patch.length + 4096);
    expect(reports.find((x) => x.status === "downloading")).toMatchObject({ delivery: "delta" });
  });

  it("a power cut mid-apply resumes after the reboot from the journal: the slot from its offset, the patch from its position", async () => {
    const bytes = minorChange(old, `1.${n + 1}.0`);
    const patch = buildPatch(old, bytes);
    const { envelope, version } = offer(bytes, patch);
    const slot = partitionOf(base, "ota_1");
    // Reference run: the flash operation that writes the slot past 160 KiB (two journal persists behind it).
    const ops: FlashOp[] = [];
    server.scenarios.set(`${runtime}-resume-ref`, { envelope });
    const ref = forkDevice(base, server, [sig.trusted], `${runtime}-resume-ref`, { flash: { onOp: (op) => ops.push(op) }, extra: { runtime } });
    expect(await ref.dev.runCycle()).toMatchObject({ version });
    const cut = ops.findIndex((op) => op.kind === "write" && op.offset >= slot.offset + 160 * 1024 && op.offset < slot.offset + slot.size) + 1;
    expect(cut).toBeGreaterThan(0);

    const ranges: string[] = [];
    const key = `${runtime}-resume`;
    server.scenarios.set(key, {
      envelope,
      download: (req, res, body) => (req.url?.endsWith(".patch") && ranges.push(String(req.headers.range ?? "none")), serveRange(req, res, body!)),
    });
    const { dev, flash } = forkDevice(base, server, [sig.trusted], key, { extra: { runtime } });
    flash.armFaults({ cutAfter: cut });
    const r = await dev.runCycle();
    expect(r, dev.logs.join("\n")).toMatchObject({ bricked: false, version, lastBoot: "confirmed" });
    // The second boot asked for the rest of the patch only: the journal held a position past its start.
    expect(ranges.length).toBe(2);
    expect(ranges[0]).toBe("none");
    expect(Number(/^bytes=(\d+)-$/.exec(ranges[1]!)?.[1])).toBeGreaterThan(0);
    expect(dev.logs.some((l) => l.includes('"action":"resume-download"'))).toBe(true);
  });

  it("a malformed patch and a patch that builds other bytes fail with CHECKSUM_MISMATCH, nothing boots but the old image", async () => {
    const bytes = minorChange(old, `1.${n + 1}.0`);
    const good = buildPatch(old, bytes);
    const tooShort = Uint8Array.from([...encodeHeader(bytes.length, old.length), ...(() => { const o: number[] = []; encodeOp(o, OP_COPY, 4096, 0); o.push(OP_END); return o; })()]);
    const wrongBytes = Uint8Array.from(good);
    wrongBytes[wrongBytes.length - 40] ^= 0x01;
    for (const [label, patch] of [["short", tooShort], ["wrong bytes", wrongBytes], ["not a patch", bytes.subarray(0, 5000)]] as const) {
      const { envelope } = offer(bytes, patch);
      const { r, flash, reports } = await run(`${runtime}-bad-${label}`, envelope);
      expect([label, r.outcome]).toMatchObject([label, { result: "failed", code: "CHECKSUM_MISMATCH" }]);
      expect(judgeFlash(flash)).toMatchObject({ bricked: false, slot: "ota_0", version: "1.0.0" });
      expect(reports.some((x) => x.status === "failed" && x.error_code === "CHECKSUM_MISMATCH")).toBe(true);
    }
  });
});
