// The live event log: every event of the stream since the page opened, newest first, filterable by type.
import { fill, h, link, when } from "../dom.js";
import { onEvent, onStatus, recent } from "../live.js";

export const EVENT_HEADERS = ["When", "Type", "Campaign", "Device", "Detail"];

/** Update events repeat the update's identity in every event; the log shows what changed. */
const QUIET = new Set(["firmware_id", "from_version", "to_version", "rollback", "attempt", "status"]);

export function eventRow(e) {
  const data = Object.entries(e.data ?? {}).filter(([k, v]) => v !== null && v !== undefined && !QUIET.has(k))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
  return [when(e.at), h("code", { class: "nowrap" }, e.type),
    e.campaign_id ? link(`#/campaigns/${encodeURIComponent(e.campaign_id)}`, e.campaign_id) : "—",
    e.device_id ? link(`#/devices/${encodeURIComponent(e.device_id)}`, e.device_id) : "—", data];
}

export function renderEvents(main) {
  const filter = h("input", { id: "ev-filter", type: "search", placeholder: "campaign. / update.failed / device." });
  const note = h("p", { class: "muted" });
  const rows = h("tbody");
  const draw = () => {
    const prefix = filter.value.trim();
    const shown = recent.filter((e) => !prefix || e.type.startsWith(prefix)).slice(0, 200);
    fill(rows, shown.length ? shown.map((e) => h("tr", {}, eventRow(e).map((c) => h("td", {}, c))))
      : h("tr", {}, h("td", { colspan: EVENT_HEADERS.length, class: "muted" }, "No events yet.")));
  };
  filter.addEventListener("input", draw);
  main.append(h("h1", {}, "Events"),
    h("div", { class: "field inline" }, h("label", { for: "ev-filter" }, "Filter by type prefix"), filter), note,
    h("table", { id: "event-log" }, h("caption", {}, "Live event log, newest first"),
      h("thead", {}, h("tr", {}, EVENT_HEADERS.map((t) => h("th", { scope: "col" }, t)))), rows));
  draw();
  const offStatus = onStatus((mode) => fill(note, `Event stream: ${mode}. Events since this page was opened.`));
  const off = onEvent(draw);
  return () => (off(), offStatus());
}
