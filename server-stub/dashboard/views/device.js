// One device: what it runs, its tags (editable by operators and admins), its update history with error codes,
// and the last reports it sent (from the stream).
import { api, can, paths } from "../api.js";
import { ago, badge, field, fill, h, link, table, toast, when } from "../dom.js";
import { refreshOn } from "../live.js";
import { eventRow, EVENT_HEADERS } from "./events.js";
import { deviceState, tagList } from "./fleet.js";

export function renderDevice(main, session, id) {
  const body = h("div", { class: "stack" }, h("p", { class: "muted" }, "Loading…"));
  // Outside `body`: a refresh redraws the facts, not the field someone is typing in.
  const editor = can(session.role, "write") ? tagEditor(id) : null;
  main.append(h("p", {}, link("#/", "← Fleet")), h("h1", {}, "Device ", h("code", {}, id)), editor?.form, body);
  return refreshOn((e) => e.device_id === id, async () => {
    const [d, { updates }, reports] = await Promise.all([api("GET", paths.device(id)), api("GET", paths.deviceUpdates(id)), lastEvents(id, 20)]);
    const facts = [
      ["State", badge(deviceState(d))], ["Version", d.current_version ?? "—"], ["Previous version", d.previous_version ?? "—"],
      ["Model / hardware", `${d.device_model ?? "—"} / ${d.hardware_version ?? "—"}`], ["Secure version", String(d.secure_version ?? "—")],
      ["Last contact", `${ago(d.last_contact_at)} (${when(d.last_contact_at)})`], ["Groups", d.groups.join(", ") || "—"],
      ["Tags", tagList(d.tags)],
    ];
    editor?.show(d.tags ?? []);
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

/** A field of space- or comma-separated tags that replaces the device's tags (PATCH; the server checks each). */
function tagEditor(id) {
  const input = h("input", { id: "d-tags", name: "tags", placeholder: "site:berlin beta", autocomplete: "off" });
  const submit = h("button", { type: "submit" }, "Save tags");
  const form = h("form", { class: "card actions", "aria-label": "Device tags" },
    field("Tags", input, "space- or comma-separated: letters, digits and _ . : = -"), submit);
  let shown = null;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const tags = input.value.split(/[\s,]+/).filter(Boolean);
    submit.disabled = true;
    try {
      const d = await api("PATCH", paths.device(id), { tags });
      shown = null;
      toast(`Tags of ${id} saved: ${d.tags?.join(" ") || "none"}`);
    } catch (err) {
      toast(`Tags refused: ${err.message}`, "error");
    } finally {
      submit.disabled = false;
    }
  });
  /** Shows the server's tags until the operator starts editing (or after a save). */
  const show = (tags) => {
    const text = tags.join(" ");
    if (shown === null || input.value === shown) input.value = shown = text;
  };
  return { form, show };
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
