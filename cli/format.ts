// Human output: a few lines per resource, the fields an operator looks at first.

const orDash = (v: unknown) => (v === null || v === undefined || v === "" ? "–" : String(v));

export function firmwareLines(fw: any): string[] {
  return [
    `${fw.firmware_id}  ${fw.name} ${fw.version}  model ${fw.device_model}  ${fw.file_size} bytes`,
    `  sha256 ${fw.checksum_sha256}`,
  ];
}

export function countsLine(c: any): string {
  const parts = [`${c.completed_devices ?? c.completed ?? 0} completed`, `${c.failed_devices ?? c.failed ?? 0} failed`];
  const rolled = c.rolled_back_devices ?? c.rolled_back ?? 0;
  if (rolled) parts.push(`${rolled} rolled back`);
  parts.push(`${c.in_progress_devices ?? c.in_progress ?? 0} in progress`, `${c.pending_devices ?? c.pending ?? 0} pending`);
  const skipped = c.skipped_devices ?? c.skipped ?? 0;
  if (skipped) parts.push(`${skipped} skipped`);
  const cancelled = c.cancelled_devices ?? c.cancelled ?? 0;
  if (cancelled) parts.push(`${cancelled} cancelled`);
  return `${c.total_devices} devices: ${parts.join(", ")}`;
}

export function campaignLines(c: any): string[] {
  const stages = Array.isArray(c.stages) ? c.stages.length : 0;
  const lines = [
    `${c.campaign_id}  "${c.name}"  ${c.status}  ${c.deployment_strategy}${stages > 1 ? `, stage ${Math.min(c.current_stage + 1, stages)}/${stages}` : ""}  firmware ${c.firmware_id}`,
    `  ${countsLine(c)}; failure rate ${c.failure_rate_percent}% (threshold ${c.failure_threshold_percent}%)`,
  ];
  if (c.requires_approval && !c.approved) lines.push("  waiting for approval (`ota campaign approve`)");
  const why = endReason(c);
  if (why) lines.push(`  ${c.status}: ${why}`);
  if (c.rollback_reason) lines.push(`  rollback: ${c.rollback_reason}`);
  return lines;
}

/** Why a campaign stopped: the cancel reason, else the pause reason (a threshold that failed it sets that too). */
export function endReason(c: any): string | null {
  if (c.status === "cancelled") return c.cancel_reason ?? null;
  return c.status === "paused" || c.status === "failed" ? c.pause_reason ?? null : null;
}

export function campaignRow(c: any): string {
  return `${c.campaign_id}  ${c.status.padEnd(11)}  ${c.completed_devices}/${c.total_devices} done  "${c.name}"`;
}

export function updateLines(u: any): string[] {
  const err = u.error ? `  ${u.error.code}${u.error.message ? `: ${u.error.message}` : ""}` : "";
  const versions = `${orDash(u.from_version)} → ${orDash(u.to_version)}`;
  return [`${u.update_id}  device ${u.device_id}  ${u.status}${u.rollback ? " (rollback)" : ""}  ${versions}  firmware ${orDash(u.firmware_id)}${err}`];
}

export function deviceLines(d: any, updates: any[]): string[] {
  const lines = [
    `${d.device_id}  model ${orDash(d.device_model)}  hardware ${orDash(d.hardware_version)}  version ${orDash(d.current_version)}`,
    `  last contact ${orDash(d.last_contact_at)}${Array.isArray(d.groups) && d.groups.length > 0 ? `  groups ${d.groups.join(", ")}` : ""}${Array.isArray(d.tags) && d.tags.length > 0 ? `  tags ${d.tags.join(", ")}` : ""}`,
  ];
  const cu = d.current_update;
  if (cu) lines.push(`  updating: ${cu.update_id} ${cu.status} to ${cu.to_version} (${cu.progress_percentage ?? 0}%)`);
  if (updates.length > 0) lines.push("  recent updates:", ...updates.flatMap(updateLines).map((l) => `    ${l}`));
  return lines;
}

export function eventLine(e: any): string {
  const ids = [e.campaign_id && `campaign=${e.campaign_id}`, e.device_id && `device=${e.device_id}`, e.update_id && `update=${e.update_id}`].filter(Boolean);
  const data = e.data && typeof e.data === "object" && Object.keys(e.data).length > 0 ? ` ${JSON.stringify(e.data)}` : "";
  return `${orDash(e.at)} ${e.type} ${ids.join(" ")}${data}`.trimEnd();
}
