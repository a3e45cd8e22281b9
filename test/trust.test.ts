import nacl from "tweetnacl";
import { describe, expect, it } from "vitest";
import type { DeviceFacts } from "../device/core/trust";
import { checkApplicable, checkManifestShape, parseEnvelope, verifySignature } from "../device/core/trust";
import { UpdateError } from "../device/core/update-error";
import { base64Encode } from "../device/protocol/base64";
import type { UpdateManifest } from "../device/protocol/manifest";
import { manifestSigningBytes } from "../device/protocol/manifest";

const server = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
const rotated = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(9));
const stranger = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(3));
const trusted = [
  { keyId: "k1", publicKey: base64Encode(server.publicKey) },
  { keyId: "k2", publicKey: base64Encode(rotated.publicKey) },
];
const NOW = Date.parse("2026-11-22T12:00:00Z");

function manifest(over: Partial<UpdateManifest> = {}): UpdateManifest {
  return {
    manifest_version: 1,
    update_id: "upd_1",
    device_id: "dev-1",
    firmware_id: "fw_1",
    version: "1.1.0",
    size: 100_000,
    sha256: "a".repeat(64),
    device_model: "ESP32-DEVKIT",
    min_hardware_version: "1.0",
    max_hardware_version: "2.0",
    chip_id: 0,
    secure_version: 1,
    download_url: "http://127.0.0.1:8221/api/v1/firmware/fw_1/download",
    fallback_url: null,
    issued_at: "2026-11-22T11:00:00.000Z",
    expires_at: "2026-11-23T11:00:00.000Z",
    rollback: false,
    mandatory: false,
    priority: "normal",
    pre_update_commands: [],
    post_update_commands: [],
    release_signature: null,
    release_key_id: null,
    ...over,
  };
}

function envelope(m: unknown, key = server, keyId = "k1") {
  const sig = nacl.sign.detached(manifestSigningBytes(m as UpdateManifest), key.secretKey);
  return JSON.stringify({ update_available: true, manifest: m, signature: base64Encode(sig), key_id: keyId, signature_alg: "ed25519" });
}

const facts: DeviceFacts = {
  deviceId: "dev-1",
  deviceModel: "ESP32-DEVKIT",
  hardwareVersion: "1.2",
  chipId: 0,
  runningVersion: "1.0.0",
  secureFloor: 1,
  applied: { newestIssuedMs: 0, updateIds: [] },
  slotSize: 0x1e0000,
  nowMs: NOW,
  clockSkewMs: 60_000,
  clockTrusted: true,
  knownCommands: ["backup_config", "verify_config"],
};

/** The whole decision as the agent makes it; returns the error code or "OK". */
function decide(body: string, f: Partial<DeviceFacts> = {}): string {
  try {
    const env = parseEnvelope(body);
    if (!env) return "NONE";
    verifySignature(env, trusted);
    const raw = env.manifest as unknown as Record<string, unknown>;
    checkManifestShape(raw);
    checkApplicable(raw, { ...facts, ...f });
    return "OK";
  } catch (e) {
    if (e instanceof UpdateError) return e.code;
    throw e;
  }
}

describe("manifest trust decisions", () => {
  it("accepts a good manifest, signed by either trusted key (rotation)", () => {
    expect(decide(envelope(manifest()))).toBe("OK");
    expect(decide(envelope(manifest(), rotated, "k2"))).toBe("OK");
    expect(decide('{"update_available":false}')).toBe("NONE");
  });

  it.each([
    ["a tampered field", () => envelope(manifest()).replace('"1.1.0"', '"1.1.1"'), "SIGNATURE_INVALID"],
    ["a stranger's key", () => envelope(manifest(), stranger, "k1"), "SIGNATURE_INVALID"],
    ["an unknown key id", () => envelope(manifest(), stranger, "k9"), "UNKNOWN_KEY"],
    ["a short signature", () => JSON.stringify({ update_available: true, manifest: manifest(), signature: "AAAA", key_id: "k1" }), "SIGNATURE_INVALID"],
    ["a missing signature", () => JSON.stringify({ update_available: true, manifest: manifest(), key_id: "k1" }), "SIGNATURE_INVALID"],
    ["another algorithm", () => JSON.stringify({ ...JSON.parse(envelope(manifest())), signature_alg: "rsa" }), "SIGNATURE_INVALID"],
    ["not JSON", () => "<html>", "MANIFEST_INVALID"],
    ["a huge body", () => envelope(manifest({ firmware_id: "x".repeat(9000) })), "MANIFEST_INVALID"],
    ["another device", () => envelope(manifest({ device_id: "dev-2" })), "MANIFEST_INVALID"],
    ["an expired manifest", () => envelope(manifest({ expires_at: "2026-11-22T10:00:00.000Z" })), "MANIFEST_EXPIRED"],
    ["a manifest from the future", () => envelope(manifest({ issued_at: "2026-11-22T14:00:00.000Z" })), "MANIFEST_INVALID"],
    ["another model", () => envelope(manifest({ device_model: "OTHER" })), "INCOMPATIBLE_VERSION"],
    ["hardware too old", () => envelope(manifest({ min_hardware_version: "1.5" })), "INCOMPATIBLE_VERSION"],
    ["hardware too new", () => envelope(manifest({ max_hardware_version: "1.1" })), "INCOMPATIBLE_VERSION"],
    ["another chip", () => envelope(manifest({ chip_id: 9 })), "INCOMPATIBLE_VERSION"],
    ["a downgrade", () => envelope(manifest({ version: "0.9.0" })), "DOWNGRADE_REJECTED"],
    ["the same version", () => envelope(manifest({ version: "1.0.0" })), "DOWNGRADE_REJECTED"],
    ["secure_version below the floor", () => envelope(manifest({ secure_version: 0 })), "SECURE_VERSION_REJECTED"],
    ["an oversize image", () => envelope(manifest({ size: 0x1e0001 })), "INSUFFICIENT_SPACE"],
    ["an unknown command", () => envelope(manifest({ pre_update_commands: ["format_disk"] })), "UNKNOWN_COMMAND"],
    ["a command named like a built-in", () => envelope(manifest({ post_update_commands: ["toString"] })), "UNKNOWN_COMMAND"],
    ["a missing field", () => envelope((({ sha256: _, ...rest }) => rest)(manifest())), "MANIFEST_INVALID"],
    ["a wrong-typed size", () => envelope(manifest({ size: "100" as unknown as number })), "MANIFEST_INVALID"],
    ["a fractional size", () => JSON.stringify({ ...JSON.parse(envelope(manifest())), manifest: { ...manifest(), size: 1.5 } }), "SIGNATURE_INVALID"],
    ["an uppercase sha256", () => envelope(manifest({ sha256: "A".repeat(64) })), "MANIFEST_INVALID"],
    ["a non-http URL", () => envelope(manifest({ download_url: "file:///etc/passwd" })), "MANIFEST_INVALID"],
    ["a non-http fallback URL", () => envelope(manifest({ fallback_url: "ftp://cdn/x" })), "MANIFEST_INVALID"],
    ["a version too long for esp_app_desc_t", () => envelope(manifest({ version: "1." + "1".repeat(31) })), "MANIFEST_INVALID"],
    ["too many commands", () => envelope(manifest({ post_update_commands: Array(17).fill("verify_config") })), "MANIFEST_INVALID"],
  ])("rejects %s", (_, body, code) => {
    expect(decide(body())).toBe(code);
  });

  it("lets a signed rollback through the downgrade check, but not through the secure_version floor", () => {
    expect(decide(envelope(manifest({ version: "0.9.0", rollback: true })))).toBe("OK");
    expect(decide(envelope(manifest({ version: "0.9.0", rollback: true, secure_version: 0 })))).toBe("SECURE_VERSION_REJECTED");
  });

  it("does not judge expiry before the clock is synced", () => {
    expect(decide(envelope(manifest({ expires_at: "2026-11-22T10:00:00.000Z" })), { clockTrusted: false })).toBe("OK");
  });

  it("refuses an applied update id, or a manifest issued before the newest applied one, even without a clock", () => {
    const applied = { newestIssuedMs: Date.parse("2026-11-22T11:00:00.000Z"), updateIds: ["upd_0", "upd_1"] };
    for (const clockTrusted of [true, false]) {
      expect(decide(envelope(manifest()), { applied, clockTrusted })).toBe("MANIFEST_REPLAYED");
      expect(decide(envelope(manifest({ update_id: "upd_1", issued_at: "2026-11-22T11:30:00.000Z" })), { applied, clockTrusted })).toBe("MANIFEST_REPLAYED");
      expect(decide(envelope(manifest({ update_id: "upd_2", issued_at: "2026-11-22T10:59:59.999Z" })), { applied, clockTrusted })).toBe("MANIFEST_REPLAYED");
      expect(decide(envelope(manifest({ update_id: "upd_2", version: "0.9.0", rollback: true })), { applied: { ...applied, updateIds: ["upd_2"] }, clockTrusted })).toBe("MANIFEST_REPLAYED");
    }
    // Another update issued at the same instant (a server clock that did not move) or later is not a replay.
    expect(decide(envelope(manifest({ update_id: "upd_2" })), { applied })).toBe("OK");
    expect(decide(envelope(manifest({ update_id: "upd_2", issued_at: "2026-11-22T11:30:00.000Z" })), { applied })).toBe("OK");
  });
});
