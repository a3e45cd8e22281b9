// Entry point: login, the session bar and a hash router (#/, #/firmware, #/campaigns, #/campaigns/<id>,
// #/devices/<id>, #/events). Each view is render(main, session) → cleanup.
import { api, clearCredential, getCredential, paths, setCredential } from "./api.js";
import { fill, h } from "./dom.js";
import * as live from "./live.js";
import { renderCampaign } from "./views/campaign.js";
import { renderCampaigns } from "./views/campaigns.js";
import { renderDevice } from "./views/device.js";
import { renderEvents } from "./views/events.js";
import { renderFirmware } from "./views/firmware.js";
import { renderFleet } from "./views/fleet.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const sessionBar = document.getElementById("session");
let session = null; // { role, subject, via }
let cleanup = null;

const ROUTES = [
  [/^#?\/?$/, renderFleet, "Fleet"],
  [/^#\/firmware$/, renderFirmware, "Firmware"],
  [/^#\/campaigns$/, renderCampaigns, "Campaigns"],
  [/^#\/campaigns\/(.+)$/, renderCampaign, "Campaign"],
  [/^#\/devices\/(.+)$/, renderDevice, "Device"],
  [/^#\/events$/, renderEvents, "Events"],
];

/** A ready login in the address: #token=… (what `npm start -- --keep-running` prints). It is taken out at once
 * so it stays in neither the history nor a bookmark. */
function takeTokenFromUrl() {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return;
  setCredential(decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search + "#/");
}

async function boot() {
  takeTokenFromUrl();
  if (!getCredential()) return showLogin();
  try {
    session = await api("GET", paths.whoami());
  } catch (e) {
    clearCredential();
    return showLogin(e.status === 401 ? "That credential was not accepted." : e.message);
  }
  if (session.role === "device") {
    clearCredential();
    return showLogin("A device credential cannot use the dashboard.");
  }
  nav.hidden = false;
  fill(sessionBar,
    h("span", { class: "live", id: "live-status", "aria-live": "polite" }),
    h("span", {}, `${session.subject} · `, h("strong", { id: "role" }, session.role)),
    h("button", { type: "button", class: "link", onclick: logout }, "Sign out"));
  live.start();
  window.addEventListener("hashchange", route);
  route();
}

function route() {
  cleanup?.();
  cleanup = null;
  const hash = location.hash || "#/";
  for (const [re, view, title] of ROUTES) {
    const m = re.exec(hash);
    if (!m) continue;
    document.title = `${title} · ESP32 OTA`;
    for (const a of nav.querySelectorAll("a")) {
      const active = a.getAttribute("href") === hash || (hash.startsWith(a.getAttribute("href") + "/") && a.getAttribute("href") !== "#/");
      if (active) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    main.replaceChildren();
    cleanup = view(main, session, m[1] ? decodeURIComponent(m[1]) : undefined) ?? null;
    return;
  }
  fill(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the fleet")));
}

function showLogin(message) {
  nav.hidden = true;
  sessionBar.replaceChildren();
  const input = h("input", { id: "credential", name: "credential", type: "password", autocomplete: "off", required: true, "aria-describedby": "credential-hint" });
  const form = h("form", { class: "card login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in"),
    message ? h("p", { role: "alert", class: "error" }, message) : null,
    h("div", { class: "field" }, h("label", { for: "credential" }, "API key or token"), input,
      h("small", { id: "credential-hint", class: "muted" }, "An operator API key (ota_…) or a JWT. It is kept for this tab only.")),
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setCredential(input.value.trim());
    void boot();
  });
  fill(main, form);
  input.focus();
}

function logout() {
  live.stop();
  cleanup?.();
  cleanup = null;
  clearCredential();
  session = null;
  window.removeEventListener("hashchange", route);
  history.replaceState(null, "", location.pathname);
  showLogin();
}

// Once per page: the session bar's indicator follows the feed (the element is there only while signed in).
live.onStatus((mode) => {
  const el = document.getElementById("live-status");
  if (el) fill(el, h("span", { class: `dot m-${mode}`, "aria-hidden": "true" }), mode);
});
void boot();
