// Fleet overview: devices per version, per state, online/offline by last contact, and the device list.
import { api, paths } from "../api.js";
import { ago, badge, fill, h, link, table } from "../dom.js";
import { refreshOn } from "../live.js";

/** Devices poll every 60 s (±20 %) by default: one not heard from in three minutes has missed at least two polls. */
export const ONLINE_WINDOW_MS = 3 * 60_000;

export function deviceState(d) {
  if (d.status === "waiting") return "waiting";
  return d.current_update?.status ?? "idle";
}

export function renderFleet(main) {
  const body = h("div", { class: "stack" }, h("p", { class: "muted" }, "Loading…"));
  main.append(h("h1", {}, "Fleet"), body);
  // Contacts are not events: the timer keeps "online" and "last contact" current.
  return refreshOn((e) => e.type.startsWith("device.") || e.type.startsWith("update."), async () => {
    const [stats, list] = await Promise.all([api("GET", paths.stats()), api("GET", paths.devices())]);
    const now = Date.now();
    const online = list.devices.filter((d) => d.last_contact_at && now - new Date(d.last_contact_at).getTime() < ONLINE_WINDOW_MS).length;
    const byState = count(list.devices.map(deviceState));
    fill(body,
      h("section", { class: "cards", "aria-label": "Fleet summary" },
        card("Devices", stats.devices.total, `${stats.devices.registered} registered · ${stats.devices.waiting} waiting`, "devices"),
        card("Online", online, `heard from in the last ${ONLINE_WINDOW_MS / 60_000} min`, "online"),
        card("Offline", list.devices.length - online, "no contact in that window, or none yet", "offline"),
        card("Success rate", stats.success_rate === null ? "—" : `${stats.success_rate} %`, `${stats.total_updates} updates`)),
      h("div", { class: "grid2" },
        bars("Devices per version", stats.devices_by_version, "versions"),
        bars("Devices per state", byState, "states")),
      table(`Devices (${list.total})`, ["Device", "Version", "State", "Last contact", "Groups", "Tags"],
        list.devices.map((d) => [link(`#/devices/${encodeURIComponent(d.device_id)}`, d.device_id), d.current_version ?? "—", badge(deviceState(d)), ago(d.last_contact_at, now), d.groups.join(", "),
          tagList(d.tags)])));
  });
}

/** Tags as code words, or a dash. */
export const tagList = (tags) => (tags?.length ? h("span", { class: "tags" }, tags.map((t) => [h("code", {}, t), " "])) : "—");

function card(title, value, note, id) {
  return h("div", { class: "card stat", ...(id ? { "data-stat": id } : {}) },
    h("h2", {}, title), h("p", { class: "big" }, String(value)), h("small", { class: "muted" }, note));
}

/** A labelled bar per key; the count is written out, the bar only shows proportion. */
function bars(title, counts, id) {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...entries.map(([, n]) => n));
  return h("section", { class: "card", "aria-label": title, "data-bars": id },
    h("h2", {}, title),
    entries.length === 0 ? h("p", { class: "muted" }, "none") : h("ul", { class: "bars" }, entries.map(([k, n]) => {
      const bar = h("span", { class: "bar", "aria-hidden": "true" });
      bar.style.setProperty("--w", `${(n / max) * 100}%`); // through CSSOM: the page's CSP refuses style attributes
      return h("li", {}, h("span", { class: "bar-label" }, k), bar, h("span", { class: "bar-n" }, String(n)));
    })));
}

function count(values) {
  const out = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
