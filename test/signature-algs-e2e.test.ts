// Manifest signature algorithms end to end (issue 17, point 3): the real server signs every manifest with ed25519
// and ECDSA P-256; a device built to accept P-256 alone updates on that signature and refuses when the key it trusts
// did not make it, on Node and on XS (where the P-256 check is a host call, as it is a native call on the ESP32).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeyPairSync } from "node:crypto";
import type { AgentRuntime } from "../host-sim/device/sim-device";
import { p256PublicPoint } from "../server-stub/signing/p256";
import type { World } from "./helpers/e2e";
import { assign, device, inspect, startWorld, TEST_AGENT, updateRecord, upload } from "./helpers/e2e";

const RUNTIMES: AgentRuntime[] = ["node", "xs"];
const P256_ONLY = { agent: { ...TEST_AGENT, signatureAlgs: ["ecdsa-p256-sha256" as const] } };

describe.each(RUNTIMES)("signature algorithms on %s", (runtime) => {
  let w: World;
  let v110: string;
  beforeAll(async () => {
    w = await startWorld(runtime, { deltas: false, tls: false });
    await upload(w, "1.0.0");
    v110 = await upload(w, "1.1.0");
  });
  afterAll(async () => w?.close());

  it("a device that accepts only ECDSA P-256 updates on the server's P-256 signature", async () => {
    expect(w.keys.map((k) => k.alg ?? "ed25519")).toEqual(["ed25519", "ecdsa-p256-sha256"]);
    const { dev } = await device(w, `${runtime}-p256`, { extra: P256_ONLY });
    const { update_id } = await assign(w, dev.options.id, v110);
    expect(await dev.runCycle()).toMatchObject({ bricked: false, version: "1.1.0", lastBoot: "confirmed" });
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "completed" });
  });

  it("trusting the server's ed25519 key and another P-256 key, it refuses before erasing anything", async () => {
    const stranger = Buffer.from(p256PublicPoint(generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey)).toString("base64");
    const keys = w.keys.map((k) => (k.alg ? { ...k, publicKey: stranger } : k));
    const { dev } = await device(w, `${runtime}-p256-stranger`, { keys, extra: P256_ONLY });
    const { update_id } = await assign(w, dev.options.id, v110);
    const r = await dev.runCycle();
    expect(r.outcome).toMatchObject({ result: "failed", code: "SIGNATURE_INVALID" });
    expect(inspect(dev.flash)).toMatchObject({ bootSlot: "ota_0", versions: { ota_0: "1.0.0", ota_1: null } });
    expect(await updateRecord(w, update_id)).toMatchObject({ status: "failed" });
  });
});
