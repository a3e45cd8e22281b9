// ota-sign, the firmware team's CI tool: keygen, sign, verify and key-list, through its main() as a shell runs it.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { verifyKeyList } from "../device/core/release-keys";
import { verifyReleaseSignature } from "../device/core/trust";
import type { ReleaseSignature, UpdateManifest } from "../device/protocol";
import { buildAppImage } from "../esp-image/app-image";
import { main } from "../release/ota-sign";

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (l) => out.push(l), (l) => err.push(l));
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("ota-sign", () => {
  const dir = mkdtempSync(join(tmpdir(), "ota-sign-"));
  const at = (name: string) => join(dir, name);
  const bytes = buildAppImage({ version: "3.1.0", secureVersion: 2, size: 20_000 });
  writeFileSync(at("app.bin"), bytes);

  it("makes a release key that only its owner can read, and never overwrites one", async () => {
    const r = await run("keygen", "--out", at("release.key"));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ key_id: expect.stringMatching(/^rel_[0-9a-f]{16}$/) });
    expect(statSync(at("release.key")).mode & 0o077).toBe(0);
    expect((await run("keygen", "--out", at("release.key"))).code).toBe(1);
  });

  it("signs what the ESP image says about itself; the signature verifies on the device and with verify", async () => {
    expect((await run("sign", at("app.bin"), "--key", at("release.key"), "--model", "ESP32-DEVKIT", "--out", at("app.sig"))).code).toBe(0);
    const sig = JSON.parse(readFileSync(at("app.sig"), "utf8")) as ReleaseSignature;
    expect(sig.statement).toMatchObject({ version: "3.1.0", secure_version: 2, device_model: "ESP32-DEVKIT" });
    const pub = (await run("pubkey", at("release.key"))).out;
    expect((await run("verify", at("app.bin"), "--sig", at("app.sig"), "--public", pub)).code).toBe(0);
    // What a device checks: the manifest's fields, the signature and key id as the server hands them on.
    const key = JSON.parse(pub) as { key_id: string; public_key: string };
    const manifest = { ...sig.statement, release_signature: sig.signature, release_key_id: sig.key_id } as unknown as UpdateManifest;
    expect(() => verifyReleaseSignature(manifest, [{ keyId: key.key_id, publicKey: key.public_key }])).not.toThrow();
    expect(() => verifyReleaseSignature({ ...manifest, secure_version: 1 }, [{ keyId: key.key_id, publicKey: key.public_key }])).toThrow(/does not cover/);
  });

  it("verify refuses other bytes, another model, another key; sign refuses a version the image contradicts", async () => {
    const pub = (await run("pubkey", at("release.key"))).out;
    const changed = Uint8Array.from(bytes);
    changed[changed.length - 100]! ^= 1;
    writeFileSync(at("changed.bin"), changed);
    expect((await run("verify", at("changed.bin"), "--sig", at("app.sig"), "--public", pub)).code).toBe(1);
    expect((await run("verify", at("app.bin"), "--sig", at("app.sig"), "--public", pub, "--model", "OTHER")).code).toBe(1);
    await run("keygen", "--out", at("other.key"));
    const otherPub = JSON.parse((await run("pubkey", at("other.key"))).out) as { public_key: string };
    const impostor = `${JSON.parse(pub).key_id}:${otherPub.public_key}`;
    expect((await run("verify", at("app.bin"), "--sig", at("app.sig"), "--public", impostor)).code).toBe(1);
    const r = await run("sign", at("app.bin"), "--key", at("release.key"), "--model", "M", "--version", "9.9.9");
    expect(r).toMatchObject({ code: 1, err: expect.stringContaining("contradicts the image's version 3.1.0") });
  });

  it("signs a key list a device accepts from that key", async () => {
    const pub = JSON.parse((await run("pubkey", at("release.key"))).out) as { key_id: string; public_key: string };
    const r = await run("key-list", "--key", at("release.key"), "--version", "5", "--release", at("other.key"), "--server", `srv_1:${pub.public_key}`);
    expect(r.code).toBe(0);
    const next = verifyKeyList(r.out, { version: 4, releaseKeys: [{ keyId: pub.key_id, publicKey: pub.public_key }], serverKeys: [] });
    expect(next.version).toBe(5);
    expect(next.serverKeys).toEqual([{ keyId: "srv_1", publicKey: pub.public_key }]);
    expect((await run("key-list", "--key", at("release.key"), "--version", "6", "--server", `srv_1:${pub.public_key}`)).code).toBe(1);
  });

  it("carries a P-256 server key with its algorithm, as GET /api/v1/keys lists it or as keyId:alg:key", async () => {
    const pub = JSON.parse((await run("pubkey", at("release.key"))).out) as { key_id: string; public_key: string };
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const point = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
    const raw = Buffer.concat([Buffer.from([4]), point, Buffer.from(publicKey.export({ format: "jwk" }).y!, "base64url")]).toString("base64");
    const listed = JSON.stringify({ key_id: "srv_p", public_key: raw, algorithm: "ecdsa-p256-sha256" });
    const r = await run("key-list", "--key", at("release.key"), "--version", "7", "--release", at("release.key"), "--server", `srv_1:${pub.public_key}`, "--server", listed);
    expect(r.code).toBe(0);
    const next = verifyKeyList(r.out, { version: 6, releaseKeys: [{ keyId: pub.key_id, publicKey: pub.public_key }], serverKeys: [] });
    expect(next.serverKeys).toEqual([{ keyId: "srv_1", publicKey: pub.public_key }, { keyId: "srv_p", publicKey: raw, alg: "ecdsa-p256-sha256" }]);
    const short = await run("key-list", "--key", at("release.key"), "--version", "8", "--release", at("release.key"), "--server", `srv_p:ecdsa-p256-sha256:${raw}`);
    expect(verifyKeyList(short.out, { version: 7, releaseKeys: [{ keyId: pub.key_id, publicKey: pub.public_key }], serverKeys: [] }).serverKeys[0]).toMatchObject({ alg: "ecdsa-p256-sha256" });
    // A release key must stay ed25519: it signs key lists and releases.
    expect((await run("key-list", "--key", at("release.key"), "--version", "9", "--release", `srv_p:ecdsa-p256-sha256:${raw}`, "--server", listed)).code).toBe(1);
  });
});
