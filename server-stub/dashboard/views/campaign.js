// One campaign: stage-by-stage progress fed by the event stream, failure rate against its threshold, its devices
// and history, and the actions the caller's role allows in the campaign's current status.
import { api, can, paths } from "../api.js";
import { badge, fill, h, link, table, toast, when } from "../dom.js";
import { refreshOn } from "../live.js";

const OPEN = ["created", "scheduled", "in_progress", "paused"];

/** Which actions make sense now; the server refuses the others with 409 anyway. */
export function actionsFor(c) {
  const out = [];
  if (c.status === "created" && c.requires_approval && !c.approved) out.push(["approve", "Approve"]);
  if (c.status === "created" && (!c.requires_approval || c.approved)) out.push(["start", "Start"]);
  if (c.status === "paused") out.push(["start", "Resume"]);
  if (c.status === "in_progress") out.push(["pause", "Pause"]);
  if (c.completed_devices > 0 && c.status !== "created") out.push(["rollback", "Roll back"]);
  if (OPEN.includes(c.status)) out.push(["cancel", "Cancel"]);
  return out;
}

const CONFIRM = {
  rollback: "Send a signed rollback to the previous firmware to every device that installed this campaign's firmware?",
  cancel: "Cancel this campaign? Devices not yet updated will not get it.",
};

export function renderCampaign(main, session, id) {
  const title = h("h1", {}, "Campaign");
  const body = h("div", { class: "stack" }, h("p", { class: "muted" }, "Loading…"));
  main.append(h("p", {}, link("#/campaigns", "← Campaigns")), title, body);
  let busy = false;
  const stop = refreshOn((e) => e.campaign_id === id, async () => {
    const [c, stats, { devices }] = await Promise.all([api("GET", paths.campaign(id)), api("GET", paths.campaignStats(id)), api("GET", paths.campaignDevices(id))]);
    fill(title, c.name, " ", badge(c.status));
    const act = async (action) => {
      if (busy || (CONFIRM[action] && !confirm(CONFIRM[action]))) return;
      busy = true;
      try {
        await api("POST", paths.campaignAction(id, action), action === "approve" ? { approval_comment: "approved in the dashboard" } : {});
        toast(`${action}: done`);
      } catch (err) {
        toast(`${action} refused: ${err.message}`, "error");
      } finally {
        busy = false;
        stop.refresh();
      }
    };
    const actions = can(session.role, "write") ? actionsFor(c) : [];
    fill(body,
      summary(c),
      actions.length ? h("div", { class: "actions", role: "group", "aria-label": "Campaign actions" },
        actions.map(([a, label]) => h("button", { type: "button", "data-action": a, class: a === "rollback" || a === "cancel" ? "danger" : "", onclick: () => act(a) }, label))) : null,
      failureMeter(c),
      h("section", { "aria-label": "Stages", class: "stages" }, h("h2", {}, "Stages"), c.stages.length ? c.stages.map(stage) : h("p", { class: "muted" }, "Stages are planned when the campaign starts.")),
      errorCodes(stats.failures_by_error_code),
      table("Devices", ["Device", "Stage", "State", "Note"], devices.map((d) => [link(`#/devices/${encodeURIComponent(d.device_id)}`, d.device_id), String(d.stage + 1), badge(d.state), d.note ?? ""])),
      table("History", ["When", "Event", "Detail"], stats.events.map((e) => [when(e.at), e.type, detail(e.detail)])));
  });
  return stop;
}

function summary(c) {
  const facts = [
    ["Firmware", c.firmware_id], ["Strategy", c.deployment_strategy],
    ["Approval", c.requires_approval ? (c.approved ? `approved ${when(c.approved_at)}` : "required, not yet given") : "not required"],
    ["Devices", `${c.completed_devices} completed · ${c.failed_devices} failed · ${c.in_progress_devices} in progress · ${c.pending_devices} pending · ${c.rolled_back_devices} rolled back`],
    ["Started", when(c.started_at)],
  ];
  if (c.pause_reason) facts.push(["Paused because", h("span", { "data-field": "pause-reason" }, c.pause_reason)]);
  if (c.rollback_reason) facts.push(["Rolled back because", c.rollback_reason]);
  return h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/** Failure rate as a bar with the threshold marked; the numbers are in the text, the bar repeats them. */
function failureMeter(c) {
  const rate = c.failure_rate_percent;
  const over = rate > c.failure_threshold_percent;
  const bar = h("div", { class: "meter" }, h("span", { class: `fill${over ? " over" : ""}` }), h("span", { class: "threshold" }));
  bar.firstChild.style.setProperty("--w", `${Math.min(100, rate)}%`);
  bar.lastChild.style.setProperty("--at", `${c.failure_threshold_percent}%`);
  return h("section", { class: "card", "aria-label": "Failure rate" },
    h("h2", {}, "Failure rate"),
    h("p", { "data-field": "failure-rate", class: over ? "error" : "" }, `${rate} % against a threshold of ${c.failure_threshold_percent} %${over ? " — over the threshold" : ""}`),
    bar);
}

function stage(s) {
  const seg = (cls, n) => {
    const el = h("span", { class: `seg ${cls}`, title: `${n} ${cls}` });
    el.style.setProperty("--w", `${s.total_devices ? (n / s.total_devices) * 100 : 0}%`);
    return el;
  };
  // A self-test failure counts against the firmware; a rollback the server ordered does not (thresholds.ts).
  const failed = s.failed + s.rolled_back_by_device;
  return h("div", { class: "stage card", "data-stage": s.index },
    h("h3", {}, `${s.index + 1}. ${s.name} `, badge(s.state)),
    h("div", { class: "stack-bar", role: "img", "aria-label": `${s.completed} of ${s.total_devices} completed, ${failed} failed` },
      seg("completed", s.completed), seg("failed", failed), seg("in_progress", s.in_progress), seg("rolled_back", s.rolled_back_by_server)),
    h("p", { class: "muted", "data-field": "stage-counts" },
      `${s.completed} / ${s.total_devices} completed · ${failed} failed · ${s.in_progress} in progress · ${s.pending} pending`,
      s.rolled_back_by_server ? ` · ${s.rolled_back_by_server} rolled back by the server` : "",
      s.soak_until ? ` · soaking until ${when(s.soak_until)}` : ""));
}

function errorCodes(byCode) {
  const entries = Object.entries(byCode ?? {});
  if (entries.length === 0) return null;
  return table("Failures by error code", ["Error code", "Devices"], entries.map(([code, n]) => [h("code", {}, code), String(n)]));
}

const detail = (d) => Object.entries(d ?? {}).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
