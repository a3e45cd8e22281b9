// A rolled_back report's crash facts (reset reason, core dump summary): stored and returned with the update,
// bounded by the protocol's limits — one past any of them is a 400 with its code, never stored.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COREDUMP_BACKTRACE_MAX, COREDUMP_TASK_MAX, deviceUpdatePath, updatePath } from "../../device/protocol";
import { buildAppImage } from "../../esp-image/app-image";
import type { Harness } from "./harness";
import { api, asAdmin, registerDevice, report, startHarness, uploadFirmware } from "./harness";

let h: Harness;
let firmwareId: string;
beforeAll(async () => {
  h = await startHarness();
  firmwareId = (await uploadFirmware(h, { version: "2.0.0" }, buildAppImage({ version: "2.0.0", size: 8 * 1024 }))).firmware_id;
});
afterAll(async () => h?.close());

async function installing(deviceId: string) {
  const apiKey = await registerDevice(h, deviceId);
  const { update_id } = (await api(h, "POST", deviceUpdatePath(deviceId), { ...asAdmin(h), body: { firmware_id: firmwareId } })).body;
  await report(h, apiKey, update_id, "downloading", "installing");
  return { apiKey, update_id: update_id as string };
}

const AT_LIMITS = {
  task: "t".repeat(COREDUMP_TASK_MAX),
  pc: 0xffffffff,
  cause: 28,
  backtrace: Array.from({ length: COREDUMP_BACKTRACE_MAX }, (_, i) => 0x400d0000 + 4 * i),
  backtrace_corrupted: true,
};

describe("rolled_back crash facts", () => {
  it("are stored and returned with the update, at the limits", async () => {
    const { apiKey, update_id } = await installing("crash-ok");
    const [r] = await report(h, apiKey, update_id, { status: "rolled_back", error_code: "SELF_TEST_FAILED", reset_reason: "panic", coredump: AT_LIMITS });
    expect(r!.status).toBe(200);
    const u = (await api(h, "GET", updatePath(update_id), asAdmin(h))).body;
    expect(u).toMatchObject({ status: "rolled_back", reset_reason: "panic", coredump: AT_LIMITS });
  });

  it.each([
    ["a task name one too long", { coredump: { ...AT_LIMITS, task: "t".repeat(COREDUMP_TASK_MAX + 1) } }],
    ["one backtrace entry too many", { coredump: { ...AT_LIMITS, backtrace: [...AT_LIMITS.backtrace, 1] } }],
    ["a pc past 32 bits", { coredump: { ...AT_LIMITS, pc: 2 ** 32 } }],
    ["an unknown field", { coredump: { ...AT_LIMITS, registers: [1, 2] } }],
    ["an unknown reset reason", { reset_reason: "gremlins" }],
  ])("%s is refused with 400 and stores nothing", async (_name, extra) => {
    const { apiKey, update_id } = await installing(`crash-bad-${_name.replace(/\W+/g, "-")}`);
    const [r] = await report(h, apiKey, update_id, { status: "rolled_back", error_code: "SELF_TEST_FAILED", reset_reason: "panic", ...extra });
    expect(r!.status).toBe(400);
    expect(r!.body.error?.code ?? r!.body.code).toMatch(/^[A-Z_]+$/);
    expect((await api(h, "GET", updatePath(update_id), asAdmin(h))).body).toMatchObject({ status: "installing", reset_reason: null, coredump: null });
  });
});
