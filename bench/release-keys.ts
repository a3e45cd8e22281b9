// XS memory of an update with release-key enforcement: the device fetches and verifies a key list, checks the
// release signature, then downloads. Same measure as xs_update_memory_* (live slots x 32 B after a GC).
import { ROUTES } from "../device/protocol/paths";
import type { XsAgent } from "../host-sim/xs/xs-agent";
import { generateReleaseKey, releaseStatement, signKeyList, signRelease } from "../release/signing";
import { assign, BIG_SLOTS_CSV, device, image, MODEL, startWorld, TEST_AGENT } from "../test/helpers/e2e";
import { api, asAdmin, firmwareForm } from "../test/server/harness";
import type { Figure } from "./run";

export async function releaseKeyFigures(figures: Figure[]) {
  const key = generateReleaseKey(new Uint8Array(32).fill(21));
  const pub = { key_id: key.key_id, public_key: key.public_key };
  const w = await startWorld("xs", { releaseKeys: [pub] });
  try {
    const size = 256 * 1024;
    const bytes = image("1.1.0", "healthy", size);
    const form = firmwareForm({ version: "1.1.0", device_model: MODEL, name: "bench" }, bytes);
    form.append("release_signature", JSON.stringify(signRelease(releaseStatement(bytes, { model: MODEL }), key)));
    const fw = (await api(w.h, "POST", ROUTES.firmwareList, { ...asAdmin(w.h), body: form })).body.firmware_id as string;
    const list = signKeyList({ key_list_version: 1, issued_at: new Date().toISOString(), release_keys: [pub], server_keys: w.keys.map((k) => ({ key_id: k.keyId!, public_key: k.publicKey })) }, key);
    await api(w.h, "PUT", ROUTES.keyList, { ...asAdmin(w.h), body: list });
    const agent = { ...TEST_AGENT, releaseKeys: [{ keyId: key.key_id, publicKey: key.public_key }], requireReleaseSignature: true };
    const { dev } = await device(w, "bench-release-keys", { partitionsCsv: BIG_SLOTS_CSV, flashSize: 16 << 20, extra: { agent, xsSampleLiveSlotsEvery: 2 } });
    if ((await dev.powerOn()).kind !== "running") throw new Error("device did not boot");
    await assign(w, dev.options.id, fw);
    const outcome = await dev.agent!.checkNow();
    if (outcome.result !== "restarting") throw new Error(`update did not complete: ${JSON.stringify(outcome)}\n${dev.logs.slice(-5).join("\n")}`);
    const xs = dev.agent as XsAgent;
    await xs.settledCompute();
    const memory = (xs.meters.peakHeapCount - xs.meters.idleHeapCount) * 32;
    figures.push({ name: "xs_update_memory_256k_release_keys", value: memory, unit: "bytes", target: "<= 32768", met: memory <= 32768, note: "key list fetched and verified, release signature checked" });
    await dev.powerOff();
  } finally {
    await w.close();
  }
}
