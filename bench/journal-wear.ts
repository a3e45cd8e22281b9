// Flash wear of the agent's journal: sector erases inside the `agent` partition during one whole 1 MiB update
// (download → switch → reboot → self-test → confirm → reports) on the Node runtime, counted by the flash itself.
import { createDeviceFlash } from "../host-sim/device-flash";
import { loadPartitionTable } from "../host-sim/esp/esp-ota";
import { findByName } from "../host-sim/esp/partition-table";
import type { FlashOp } from "../host-sim/flash/nor-flash";
import { assign, device, startWorld, updateRecord, upload } from "../test/helpers/e2e";
import type { Figure } from "./run";

const MiB = 1024 * 1024;

export async function journalWearFigures(figures: Figure[]) {
  const w = await startWorld("node");
  try {
    let counting = false;
    const erases: FlashOp[] = [];
    const flash = createDeviceFlash({ onOp: (op) => counting && op.kind === "erase" && erases.push(op) });
    const agentPartition = findByName(loadPartitionTable(flash), "agent")!;
    const fw = await upload(w, "9.0.0", { size: MiB });
    const { dev } = await device(w, "bench-journal-wear", { flash });
    // The device has been running for a while: its first boot's commits are not part of the update.
    const idle = await dev.powerOn();
    if (idle.kind !== "running") throw new Error(`device did not boot: ${idle.kind}`);
    counting = true;
    const { update_id } = await assign(w, dev.options.id, fw);
    const outcome = await dev.agent!.checkNow();
    if (outcome.result !== "restarting") throw new Error(`update did not complete: ${JSON.stringify(outcome)}`);
    const after = await dev.powerOn();
    counting = false;
    const record = await updateRecord(w, update_id);
    if (after.kind !== "running" || after.version !== "9.0.0" || after.boot !== "confirmed" || record.status !== "completed") {
      throw new Error(`the update did not complete: ${JSON.stringify({ after, status: record.status })}\n${dev.logs.slice(-5).join("\n")}`);
    }
    await dev.powerOff();
    const inAgent = erases.filter((op) => op.offset >= agentPartition.offset && op.offset < agentPartition.offset + agentPartition.size);
    figures.push({
      name: "agent_partition_erases_per_update",
      value: inAgent.length,
      unit: "sectors",
      target: "<= 30",
      met: inAgent.length <= 30,
      note: "half of the 60 measured when every journal commit erased a 2-sector slot",
    });
  } finally {
    await w.close();
  }
}
