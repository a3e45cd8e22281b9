// A simulated fleet for campaign tests: devices with API keys that report outcomes on demand.
import { api, asAdmin, randomBytes, registerDevice, report, uploadFirmware, type Harness } from "./harness";

export type Outcome = "completed" | "failed" | "silent" | "rolled_back";

export interface Fleet {
  keys: Map<string, string>;
  ids: string[];
  fwOld: any;
  fwNew: any;
}

export async function setupFleet(h: Harness, n: number, prefix = "d"): Promise<Fleet> {
  const fwOld = await uploadFirmware(h, { version: "1.0.0" }, randomBytes(3000, 11));
  const fwNew = await uploadFirmware(h, { version: "1.2.0" }, randomBytes(3000, 12));
  const keys = new Map<string, string>();
  const ids = Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(2, "0")}`);
  for (const id of ids) {
    keys.set(id, await registerDevice(h, id, { current_version: "1.0.0" }));
    // The device says it runs the stored 1.0.0 image, so a rollback target is known.
    h.server.ctx.db.prepare("UPDATE devices SET current_firmware_id = ? WHERE device_id = ?").run(fwOld.firmware_id, id);
  }
  return { keys, ids, fwOld, fwNew };
}

export async function createCampaign(h: Harness, body: Record<string, unknown>): Promise<string> {
  // list_order: these tests follow stage mechanics device by device; test/server/targeting.test.ts covers the spread sample.
  const r = await api(h, "POST", "/api/v1/campaigns", { ...asAdmin(h), body: { name: "test", selection: "list_order", ...body } });
  if (r.status !== 201) throw new Error(`create campaign: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.campaign_id;
}

export async function start(h: Harness, id: string): Promise<any> {
  const r = await api(h, "POST", `/api/v1/campaigns/${id}/start`, asAdmin(h));
  if (r.status !== 200) throw new Error(`start: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function campaign(h: Harness, id: string): Promise<any> {
  return (await api(h, "GET", `/api/v1/campaigns/${id}`, asAdmin(h))).body;
}

export async function devices(h: Harness, id: string): Promise<Array<{ device_id: string; stage: number; state: string; update_id: string | null; rollback_update_id: string | null; note: string | null }>> {
  return (await api(h, "GET", `/api/v1/campaigns/${id}/devices`, asAdmin(h))).body.devices;
}

export async function inFlight(h: Harness, id: string): Promise<string[]> {
  return (await devices(h, id)).filter((d) => d.state === "in_progress").map((d) => d.device_id);
}

/** Every in-flight device of the campaign reports per `outcome` (silent ones do nothing). */
export async function settle(h: Harness, f: Fleet, id: string, outcome: (deviceId: string) => Outcome = () => "completed"): Promise<string[]> {
  const rows = (await devices(h, id)).filter((d) => d.state === "in_progress");
  for (const d of rows) {
    const o = outcome(d.device_id);
    const key = f.keys.get(d.device_id)!;
    if (o === "silent") continue;
    if (o === "completed") await report(h, key, d.update_id!, "downloading", "installing", "completed");
    else if (o === "rolled_back") await report(h, key, d.update_id!, "downloading", "installing", { status: "rolled_back", error_code: "SELF_TEST_FAILED" });
    else await report(h, key, d.update_id!, "downloading", { status: "failed", error_code: "CHECKSUM_MISMATCH" });
  }
  return rows.map((d) => d.device_id);
}
