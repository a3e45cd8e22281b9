// One device: what it runs, its update history with error codes, and the last reports it sent (from the stream).
import { api, paths } from "../api.js";
import { ago, badge, fill, h, link, table, when } from "../dom.js";
import { refreshOn } from "../live.js";
import { eventRow, EVENT_HEADERS } from "./events.js";
import { deviceState } from "./fleet.js";

export function renderDevice(main, _session, id) {
  const body = h("div", { class: "stack" }, h("p", { class: "muted" }, "Loading…"));
  main.append(h("p", {}, link("#/", "← Fleet")), h("h1", {}, "Device ", h("code", {}, id)), body);
  return refreshOn((e) => e.device_id === id, async () => {
    const [d, { updates }, reports] = await Promise.all([api("GET", paths.device(id)), api("GET", paths.deviceUpdates(id)), lastEvents(id, 20)]);
    const facts = [
      ["State", badge(deviceState(d))], ["Version", d.current_version ?? "—"], ["Previous version", d.previous_version ?? "—"],
      ["Model / hardware", `${d.device_model ?? "—"} / ${d.hardware_version ?? "—"}`], ["Secure version", String(d.secure_version ?? "—")],
      ["Last contact", `${ago(d.last_contact_at)} (${when(d.last_contact_at)})`], ["Groups", d.groups.join(", ") || "—"],
    ];
    if (d.current_update) facts.push(["Current update", `${d.current_update.to_version}: ${d.current_update.status} ${d.current_update.progress_percentage} %`]);
    fill(body,
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      table("Update history", ["Created", "Update", "Status", "Progress", "Error", "Campaign", "Finished"], updates.map((u) => [
        when(u.created_at), `${u.from_version ?? "?"} → ${u.to_version}${u.rollback ? " (rollback)" : ""}`, badge(u.status), `${u.progress_percentage} %`,
        u.error ? h("span", {}, h("code", {}, u.error.code), " ", u.error.message ?? "") : "",
        u.campaign_id ? link(`#/campaigns/${encodeURIComponent(u.campaign_id)}`, u.campaign_id) : "—", when(u.completed_at)])),
      table("Last reports", EVENT_HEADERS, reports.map(eventRow)));
  });
}

/** The device's newest events, newest first. The JSON pages of GET /events run oldest first: read them through. */
async function lastEvents(id, n) {
  let after = 0;
  let all = [];
  for (let page = 0; page < 20; page++) {
    const { events, next_after } = await api("GET", paths.events(`?device_id=${encodeURIComponent(id)}&limit=500&after=${after}`));
    all = all.concat(events).slice(-n);
    if (events.length < 500) break;
    after = next_after;
  }
  return all.reverse();
}
