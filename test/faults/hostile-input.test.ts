// Reliability harness 3: hostile update input. Manifests with missing, wrong-typed or huge fields, bad
// signatures, unknown keys, replays and expiry; images with bad magic, checksum, hash, segments or length,
// truncated or oversized; servers whose Content-Length or Content-Range lie. Each goes through the real agent
// against our own server (signing with a key the device trusts) and must be refused with its specific code,
// reported to the server, with the running slot and otadata untouched: nothing unverified becomes bootable.
import type http from "node:http";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeviceErrorCode } from "../../device/protocol/errors";
import { ENVELOPE_MAX_BYTES } from "../../device/protocol/limits";
import type { NorFlash } from "../../host-sim/flash/nor-flash";
import { imageChecksum } from "../../esp-image/app-image";
import { appImage, baseFlash, DEVICE_ID, forkDevice, judgeFlash, manifestFor, partitionBytes, printCounts, serveRange, signer, UpdateServer } from "./support";
import type { Scenario } from "./support";

const OLD = "1.0.0";
const NEW = "1.1.0";

interface Case {
  name: string;
  code: DeviceErrorCode;
  /** Envelope (or raw body) given the server and a manifest factory; `prior` is the envelope consumed first. */
  body: (prior?: Record<string, unknown>) => string | Record<string, unknown>;
  /** An update the device accepts first (its download then fails): what a replay case replays. */
  prior?: () => Record<string, unknown>;
  download?: Scenario["download"];
  /** The rejection happens before the slot is erased (manifest-level checks). */
  slotUntouched?: boolean;
  /** The body is refused unparsed (too large), so no update id is known to report against. */
  unparsed?: boolean;
}

const sig = signer();
const stranger = signer(9, "harness-key"); // same key id, another key
const unknown = signer(11, "someone-else");

/** Re-seals an image after an edit: the XOR checksum byte (when `checksum`) and the appended SHA-256. */
function reseal(img: Uint8Array, opts: { checksum?: boolean } = {}): Uint8Array {
  const hashAt = img.length - 32;
  if (opts.checksum) {
    // Segment data follows the 24-byte header; each segment has an 8-byte header (load, length).
    const dv = new DataView(img.buffer, img.byteOffset, img.length);
    let at = 24;
    let sum: number | undefined;
    for (let s = 0; s < img[1]!; s++) {
      const len = dv.getUint32(at + 4, true);
      sum = imageChecksum(img.subarray(at + 8, at + 8 + len), sum);
      at += 8 + len;
    }
    img[hashAt - 1] = sum!;
  }
  img.set(createHash("sha256").update(img.subarray(0, hashAt)).digest(), hashAt);
  return img;
}

describe("hostile update input", () => {
  let server: UpdateServer;
  let base: NorFlash;
  const cases: Case[] = [];
  const tally = { cases: 0, rejected: 0, bootableUnverified: 0 };

  beforeAll(async () => {
    server = await UpdateServer.start();
    base = await baseFlash(server, [sig.trusted]);
  });
  afterAll(async () => {
    printCounts(`hostile inputs: ${tally.cases}, rejected with their code: ${tally.rejected}, unverified made bootable: ${tally.bootableUnverified}`);
    await server?.close();
  });

  const good = appImage(NEW);
  /** Serve `bytes` under a unique name; returns the signed envelope of `over`ridden manifest for them. */
  let serial = 0;
  const offer = (bytes: Uint8Array, over: Record<string, unknown> = {}, s = sig, extra: Record<string, unknown> = {}) => {
    const name = `img${++serial}`;
    server.images.set(name, bytes);
    return s.sign(manifestFor(server, name, bytes, (over.version as string) ?? NEW, over), extra);
  };
  const m = (over: Record<string, unknown>) => () => offer(good, over);
  const without = (field: string) => () => {
    const env = offer(good);
    const man = { ...(env.manifest as Record<string, unknown>) };
    delete man[field];
    return sig.sign(man);
  };
  const mi = (name: string, body: Case["body"], code: DeviceErrorCode = "MANIFEST_INVALID") => cases.push({ name, body, code, slotUntouched: true });

  // Missing fields (every one the manifest carries).
  for (const f of ["manifest_version", "update_id", "device_id", "firmware_id", "version", "size", "sha256", "device_model", "min_hardware_version", "max_hardware_version", "chip_id", "secure_version", "download_url", "issued_at", "expires_at", "rollback", "mandatory", "priority", "pre_update_commands", "post_update_commands"]) {
    mi(`missing ${f}`, without(f));
  }
  // Wrong types and values.
  const wrong: Array<[string, Record<string, unknown>]> = [
    ["manifest_version 2", { manifest_version: 2 }],
    ["size as a string", { size: "65536" }],
    ["negative size", { size: -1 }],
    ["version as a number", { version: 110 }],
    ["version not a version", { version: "latest" }],
    ["uppercase sha256", { sha256: "A".repeat(64) }],
    ["short sha256", { sha256: "ab".repeat(16) }],
    ["chip_id as a string", { chip_id: "0" }],
    ["rollback as a string", { rollback: "false" }],
    ["unknown priority", { priority: "urgent" }],
    ["ftp download_url", { download_url: "ftp://example.com/fw.bin" }],
    ["issued_at not a time", { issued_at: "yesterday" }],
    ["commands not a list", { pre_update_commands: "reboot" }],
    ["command not a string", { post_update_commands: [1] }],
    ["device_id as a number", { device_id: 7 }],
  ];
  for (const [name, over] of wrong) mi(name, m(over));
  // Huge fields.
  mi("huge version", m({ version: "1." + "1".repeat(1000) }));
  mi("huge firmware_id", m({ firmware_id: "f".repeat(5000) }));
  mi("huge size", m({ size: 2 ** 40 }));
  mi("huge download_url", m({ download_url: "http://x/" + "a".repeat(2000) }));
  mi("too many commands", m({ pre_update_commands: Array.from({ length: 17 }, (_, i) => `c${i}`) }));
  cases.push({ name: "body over ENVELOPE_MAX_BYTES (10 KiB)", code: "MANIFEST_INVALID", slotUntouched: true, unparsed: true, body: () => ({ ...offer(good), padding: "p".repeat(ENVELOPE_MAX_BYTES) }) });
  // Bodies that are not envelopes.
  mi("body not JSON", () => "{update_available: true");
  mi("update_available missing", () => ({ manifest: {} }));
  mi("update_available not boolean", () => ({ update_available: "yes" }));
  mi("manifest an array", () => ({ update_available: true, manifest: [], signature: "x" }));
  // Signatures and keys.
  const tamper = (env: Record<string, unknown>, fn: (e: Record<string, unknown>) => void) => (fn(env), env);
  mi("signature with a flipped bit", () => tamper(offer(good), (e) => {
    const s = Buffer.from(e.signature as string, "base64");
    s[10] ^= 1;
    e.signature = s.toString("base64");
  }), "SIGNATURE_INVALID");
  mi("fractional size (cannot be canonicalised)", () => tamper(offer(good), (e) => ((e.manifest as Record<string, unknown>).size = 65536.5)), "SIGNATURE_INVALID");
  mi("manifest changed after signing", () => tamper(offer(good), (e) => ((e.manifest as Record<string, unknown>).size = 1024)), "SIGNATURE_INVALID");
  mi("signature of 63 bytes", () => tamper(offer(good), (e) => (e.signature = Buffer.alloc(63, 1).toString("base64"))), "SIGNATURE_INVALID");
  mi("signature not base64", () => tamper(offer(good), (e) => (e.signature = "!!!!not base64!!!!")), "SIGNATURE_INVALID");
  mi("signature missing", () => tamper(offer(good), (e) => delete e.signature), "SIGNATURE_INVALID");
  mi("signature huge", () => tamper(offer(good), (e) => (e.signature = "A".repeat(300))), "SIGNATURE_INVALID");
  mi("another algorithm", () => tamper(offer(good), (e) => (e.signature_alg = "rsa-pss-sha256")), "SIGNATURE_INVALID");
  // `signatures` (one per algorithm): when present it is what counts, the legacy fields are ignored.
  mi("signatures of an unknown algorithm only (the legacy one valid)", () => tamper(offer(good), (e) => (e.signatures = [{ key_id: e.key_id, alg: "rsa-pss-sha256", sig: e.signature }])), "SIGNATURE_INVALID");
  mi("signatures not a list", () => tamper(offer(good), (e) => (e.signatures = { key_id: e.key_id, alg: "ed25519", sig: e.signature })));
  mi("signatures with five entries", () => tamper(offer(good), (e) => (e.signatures = Array.from({ length: 5 }, () => ({ key_id: e.key_id, alg: "ed25519", sig: e.signature })))));
  mi("signed by an untrusted key under a trusted key id", () => offer(good, {}, stranger), "SIGNATURE_INVALID");
  mi("signed by an unknown key", () => offer(good, {}, unknown), "UNKNOWN_KEY");
  // Replays, expiry and applicability.
  mi("replayed for another device", m({ device_id: "another-device" }));
  mi("replayed after expiry", m({ issued_at: new Date(Date.now() - 3 * 86400_000).toISOString(), expires_at: new Date(Date.now() - 2 * 86400_000).toISOString() }), "MANIFEST_EXPIRED");
  mi("issued in the future", m({ issued_at: new Date(Date.now() + 86400_000).toISOString(), expires_at: new Date(Date.now() + 2 * 86400_000).toISOString() }));
  mi("for another model", m({ device_model: "OTHER-BOARD" }), "INCOMPATIBLE_VERSION");
  mi("for newer hardware", m({ min_hardware_version: "2.0" }), "INCOMPATIBLE_VERSION");
  mi("for another chip", m({ chip_id: 9 }), "INCOMPATIBLE_VERSION");
  mi("a downgrade", m({ version: "0.9.0" }), "DOWNGRADE_REJECTED");
  mi("the running version again", m({ version: OLD }), "DOWNGRADE_REJECTED");
  mi("larger than the slot", m({ size: 0x1e0000 + 1 }), "INSUFFICIENT_SPACE");
  mi("unknown pre-update command", m({ pre_update_commands: ["format_disk"] }), "UNKNOWN_COMMAND");
  mi("unknown post-update command", m({ post_update_commands: ["self_destruct"] }), "UNKNOWN_COMMAND");

  // Replays of a consumed manifest, as a recorder on the path would resend its raw body. The prior update is
  // accepted, then its download fails (404): accepted is consumed, whatever happened after.
  const consumed = (over: Record<string, unknown> = {}) => () => offer(good, { download_url: `${server.url}/fw/missing`, ...over });
  const replay = (name: string, body: (prior: Record<string, unknown>) => Record<string, unknown>, over: Record<string, unknown> = {}) =>
    cases.push({ name, code: "MANIFEST_REPLAYED", slotUntouched: true, prior: consumed(over), body: (prior) => JSON.stringify(body(prior!)) });
  const resign = (prior: Record<string, unknown>, over: Record<string, unknown>) => sig.sign({ ...(prior.manifest as Record<string, unknown>), ...over });
  replay("a consumed manifest replayed byte for byte", (prior) => prior);
  replay("a consumed update id, re-signed later", (prior) => resign(prior, { issued_at: new Date(Date.now() - 1000).toISOString() }));
  replay("a consumed signed rollback manifest", (prior) => prior, { version: "0.9.0", rollback: true });
  replay("another update issued before the consumed one", (prior) => resign(prior, { update_id: "upd-older", issued_at: new Date(Date.now() - 120_000).toISOString() }));

  // Images: each manifest is true to the bytes served (size and SHA-256), so only the image checks catch them.
  const img = (name: string, edit: (b: Uint8Array) => Uint8Array, code: DeviceErrorCode = "IMAGE_INVALID", over: Record<string, unknown> = {}) =>
    cases.push({ name, code, body: () => offer(edit(Uint8Array.from(good)), over) });
  img("bad magic", (b) => ((b[0] = 0xe8), b));
  img("bad checksum byte", (b) => ((b[b.length - 33] ^= 0x5a), reseal(b)));
  img("bad appended hash", (b) => ((b[b.length - 1] ^= 1), b));
  img("flipped byte in a segment (hash and checksum stale)", (b) => ((b[40_000] ^= 0x80), b));
  img("flipped byte in a segment, hash resealed (checksum catches it)", (b) => ((b[40_000] ^= 0x80), reseal(b)));
  img("segment count 17", (b) => ((b[1] = 17), reseal(b)));
  img("segment count 0", (b) => ((b[1] = 0), reseal(b)));
  img("segment count one short", (b) => ((b[1] -= 1), reseal(b)));
  img("segment length past the end", (b) => (new DataView(b.buffer).setUint32(24 + 4, 0x7fffff, true), reseal(b)));
  img("segment length unaligned", (b) => (new DataView(b.buffer).setUint32(24 + 4, new DataView(b.buffer).getUint32(28, true) + 1, true), reseal(b)));
  img("truncated by 100 bytes", (b) => b.slice(0, b.length - 100));
  img("truncated to 32 KiB", (b) => b.slice(0, 32 * 1024));
  img("header only", (b) => b.slice(0, 24));
  img("image says another version", () => appImage("1.3.0"), "IMAGE_INVALID", { version: NEW });
  img("image says another secure_version", (b) => b, "IMAGE_INVALID", { secure_version: 3 });
  img("not an app image at all", (b) => b.map((_, i) => (i * 7) & 0xff));
  cases.push({ name: "SHA-256 of other bytes", code: "CHECKSUM_MISMATCH", body: () => offer(good, { sha256: createHash("sha256").update("other").digest("hex") }) });

  // Servers that lie about lengths.
  const dl = (name: string, code: DeviceErrorCode, download: Scenario["download"]) => cases.push({ name, code, download, body: () => offer(good) });
  const head = (res: http.ServerResponse, status: number, h: Record<string, string>) => res.writeHead(status, { "content-type": "application/octet-stream", ...h });
  dl("Content-Length larger than the manifest", "DOWNLOAD_FAILED", (_q, res, b) => (head(res, 200, { "content-length": String(b!.length + 100) }), res.write(Buffer.from(b!)), setTimeout(() => res.destroy(), 5)));
  dl("Content-Length smaller than the manifest", "DOWNLOAD_FAILED", (_q, res, b) => (head(res, 200, { "content-length": String(b!.length - 100) }), res.end(Buffer.from(b!.subarray(0, b!.length - 100)))));
  dl("more bytes than the manifest, no Content-Length", "DOWNLOAD_FAILED", (_q, res, b) => (head(res, 200, {}), res.write(Buffer.from(b!)), res.end(Buffer.alloc(5000, 0xff))));
  dl("206 with a wrong total after a cut", "DOWNLOAD_FAILED", (q, res, b) => {
    if (!q.headers.range) return head(res, 200, {}), res.write(Buffer.from(b!.subarray(0, 30_000))), setTimeout(() => res.destroy(), 5);
    const start = Number(/bytes=(\d+)-/.exec(String(q.headers.range))![1]);
    head(res, 206, { "content-range": `bytes ${start}-${b!.length}/${b!.length + 1}` });
    res.end(Buffer.from(b!.subarray(start)));
  });
  dl("a file shorter than the manifest, no Content-Length, 416 on resume", "DOWNLOAD_FAILED", (q, res, b) => {
    const short = b!.subarray(0, b!.length - 5000);
    if (q.headers.range) return serveRange(q, res, short);
    head(res, 200, {});
    res.write(Buffer.from(short));
    res.end();
  });
  dl("a server that always answers 416", "DOWNLOAD_FAILED", (_q, res, b) => res.writeHead(416, { "content-range": `bytes */${b!.length}` }).end());
  dl("a server that always answers 404", "DOWNLOAD_FAILED", (_q, res) => res.writeHead(404).end());

  it("has at least 50 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(50);
  });

  it.each(cases.map((c, i) => [i + 1, c.name, c] as const))("#%i %s", async (_i, _name, c) => {
    tally.cases++;
    const key = `hostile-${_i}`;
    const { dev, flash } = forkDevice(base, server, [sig.trusted], key);
    const prior = c.prior?.();
    if (prior) {
      server.scenarios.set(key, { envelope: prior });
      expect((await dev.runCycle()).outcome).toMatchObject({ result: "failed", code: "DOWNLOAD_FAILED" });
    }
    const body = c.body(prior);
    server.scenarios.set(key, { envelope: body, ...(c.download ? { download: c.download } : {}) });
    const before = { ota0: partitionBytes(flash, "ota_0"), ota1: partitionBytes(flash, "ota_1"), otadata: partitionBytes(flash, "otadata") };
    const r = await dev.runCycle();
    const log = dev.logs.slice(-8).join("\n");
    expect(r.outcome, log).toMatchObject({ result: "failed", code: c.code });
    tally.rejected++;
    expect(r).toMatchObject({ bricked: false, slot: "ota_0", version: OLD });
    // Nothing unverified became bootable: otadata is exactly as before, the running slot too.
    const after = { ota0: partitionBytes(flash, "ota_0"), otadata: partitionBytes(flash, "otadata") };
    if (after.otadata !== before.otadata) tally.bootableUnverified++;
    expect(after).toEqual({ ota0: before.ota0, otadata: before.otadata });
    expect(judgeFlash(flash)).toMatchObject({ bricked: false, slot: "ota_0", version: OLD, otadataAccepted: true });
    if (c.slotUntouched) expect(partitionBytes(flash, "ota_1")).toBe(before.ota1);
    // The server heard the same code, whenever the manifest had a usable update id.
    const manifest = (typeof body === "object" ? body : parsedOrNull(body))?.manifest as Record<string, unknown> | undefined;
    const updateId = !c.unparsed && manifest && typeof manifest.update_id === "string" && manifest.update_id.length <= 64 ? manifest.update_id : null;
    const reports = server.reportsOf(key);
    if (updateId) expect(reports.map((x) => [x.updateId, x.body.status, x.body.error_code]), log).toContainEqual([updateId, "failed", c.code]);
    else expect(reports).toEqual([]);
    expect(DEVICE_ID).toBe(dev.options.id);
  }, 20_000);
});

function parsedOrNull(text: string): Record<string, unknown> | null {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
}
