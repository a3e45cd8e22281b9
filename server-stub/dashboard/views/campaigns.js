// Campaign list and the form that creates one (operators and admins only).
import { api, can, paths } from "../api.js";
import { badge, field, fill, h, link, table, toast, when } from "../dom.js";
import { refreshOn } from "../live.js";

export function renderCampaigns(main, session) {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const formSlot = h("div");
  main.append(h("h1", {}, "Campaigns"), formSlot, list);
  let formShown = false;
  return refreshOn((e) => e.type.startsWith("campaign."), async () => {
    const { campaigns, total } = await api("GET", paths.campaigns());
    fill(list, table(`Campaigns (${total})`, ["Name", "Status", "Strategy", "Progress", "Failure rate", "Created"],
      campaigns.map((c) => [link(`#/campaigns/${encodeURIComponent(c.campaign_id)}`, c.name), badge(c.status), c.deployment_strategy,
        `${c.completed_devices} / ${c.total_devices} completed`, `${c.failure_rate_percent} % (threshold ${c.failure_threshold_percent} %)`, when(c.created_at)])));
    if (!formShown && can(session.role, "write")) {
      formShown = true;
      const [{ firmware }, { groups }] = await Promise.all([api("GET", paths.firmwareList()), api("GET", paths.groups())]);
      fill(formSlot, createForm(firmware, groups));
    }
  });
}

function createForm(firmware, groups) {
  const input = (id, attrs = {}) => h("input", { id, name: id, ...attrs });
  const name = input("c-name", { required: true, maxlength: 200 });
  const fw = h("select", { id: "c-firmware", required: true }, firmware.map((f) => h("option", { value: f.firmware_id }, `${f.version} · ${f.name} (${f.device_model})`)));
  const strategy = h("select", { id: "c-strategy" }, ["canary", "staged", "immediate"].map((s) => h("option", { value: s }, s)));
  const group = h("select", { id: "c-group" }, h("option", { value: "" }, "— none —"), groups.map((g) => h("option", { value: g.name }, `${g.name} (${g.device_ids.length})`)));
  const devices = input("c-devices", { placeholder: "dev-1, dev-2" });
  const tags = input("c-tags", { placeholder: "site:berlin beta" });
  const canary = input("c-canary", { type: "number", min: 1, max: 100, step: "any", value: 10 });
  const soak = input("c-soak", { type: "number", min: 0, value: 0 });
  const batch = input("c-batch", { type: "number", min: 1, value: 5 });
  const threshold = input("c-threshold", { type: "number", min: 0, max: 100, step: "any", value: 10 });
  const approval = input("c-approval", { type: "checkbox", checked: true });
  const rollback = input("c-autorollback", { type: "checkbox" });
  const submit = h("button", { type: "submit" }, "Create campaign");
  const form = h("form", { class: "card grid-form", "aria-labelledby": "create-title" },
    h("h2", { id: "create-title" }, "New campaign"),
    field("Name", name), field("Firmware", fw), field("Strategy", strategy), field("Target group", group),
    field("Target devices", devices, "comma-separated ids, added to the group's members"),
    field("Target tags", tags, "devices carrying every one of these tags, also those registered while it runs"),
    field("Canary share (%)", canary, "canary strategy only"), field("Canary soak (minutes)", soak),
    field("Batch size", batch, "devices per stage after the canary"), field("Failure threshold (%)", threshold, "the campaign pauses above it"),
    h("div", { class: "checks" },
      h("label", {}, approval, " Requires approval"),
      h("label", {}, rollback, " Roll back automatically above the threshold")),
    h("div", { class: "actions" }, submit));
  const num = (el) => (el.value === "" ? null : Number(el.value));
  const words = (el) => el.value.split(/[\s,]+/).filter(Boolean);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      name: name.value.trim(), firmware_id: fw.value, deployment_strategy: strategy.value,
      target_groups: group.value ? [group.value] : [],
      target_devices: words(devices),
      // The server's target_filter: a device must carry all the tags (campaigns/targeting.ts).
      ...(words(tags).length ? { target_filter: { tags: words(tags) } } : {}),
      batch_size: num(batch), failure_threshold_percent: num(threshold) ?? 10,
      requires_approval: approval.checked, auto_rollback: rollback.checked,
      ...(strategy.value === "canary" ? { canary_percentage: num(canary), canary_duration_minutes: num(soak) } : {}),
    };
    submit.disabled = true;
    try {
      const c = await api("POST", paths.campaigns(), body);
      toast(`Campaign ${c.name} created (${c.status})`);
      location.hash = `#/campaigns/${encodeURIComponent(c.campaign_id)}`;
    } catch (err) {
      toast(`Campaign refused: ${err.message}`, "error");
      submit.disabled = false;
    }
  });
  return form;
}
