// One device: what it runs, its update history with error codes, and the last reports it sent (from the stream).
import { api, paths } from "../api.js";
import { ago, badge, fill, h, link, table, when } from "../dom.js";
import { recent, refreshOn } from "../live.js";
import { eventRow, EVENT_HEADERS } from "./events.js";
import { deviceState } from "./fleet.js";

export function renderDevice(main, _session, id) {
  const body = h("div", { class: "stack" }, h("p", { class: "muted" }, "Loading…"));
  main.append(h("p", {}, link("#/", "← Fleet")), h("h1", {}, "Device ", h("code", {}, id)), body);
  return refreshOn((e) => e.device_id === id, async () => {
    const [d, { updates }] = await Promise.all([api("GET", paths.device(id)), api("GET", paths.deviceUpdates(id))]);
    const facts = [
      ["State", badge(deviceState(d))], ["Version", d.current_version ?? "—"], ["Previous version", d.previous_version ?? "—"],
      ["Model / hardware", `${d.device_model ?? "—"} / ${d.hardware_version ?? "—"}`], ["Secure version", String(d.secure_version ?? "—")],
      ["Last contact", `${ago(d.last_contact_at)} (${when(d.last_contact_at)})`], ["Groups", d.groups.join(", ") || "—"],
    ];
    if (d.current_update) facts.push(["Current update", `${d.current_update.to_version}: ${d.current_update.status} ${d.current_update.progress_percentage} %`]);
    const reports = recent.filter((e) => e.device_id === id).slice(0, 20);
    fill(body,
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      table("Update history", ["Created", "Update", "Status", "Progress", "Error", "Campaign", "Finished"], updates.map((u) => [
        when(u.created_at), `${u.from_version ?? "?"} → ${u.to_version}${u.rollback ? " (rollback)" : ""}`, badge(u.status), `${u.progress_percentage} %`,
        u.error ? h("span", {}, h("code", {}, u.error.code), " ", u.error.message ?? "") : "",
        u.campaign_id ? link(`#/campaigns/${encodeURIComponent(u.campaign_id)}`, u.campaign_id) : "—", when(u.completed_at)])),
      table("Last reports (this session)", EVENT_HEADERS, reports.map(eventRow)));
  });
}
