// Firmware catalogue and upload: drop (or pick) a .bin, read its app descriptor and checksums here, then confirm.
import { api, can, paths } from "../api.js";
import { bytes, field, fill, h, table, toast, when } from "../dom.js";
import { inspectImage } from "../image.js";
import { refreshOn } from "../live.js";

export function renderFirmware(main, session) {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  let lastModel = "";
  const stop = refreshOn((e) => e.type.startsWith("firmware."), async () => {
    const { firmware, total } = await api("GET", paths.firmwareList());
    lastModel = firmware[0]?.device_model ?? lastModel;
    fill(list, table(`Catalogue (${total})`, ["Version", "Name", "Model", "Size", "SHA-256", "Format", "Uploaded"],
      firmware.map((f) => [h("strong", {}, f.version), f.name, f.device_model, bytes(f.file_size), h("code", { title: f.checksum_sha256 }, f.checksum_sha256.slice(0, 16) + "…"), f.image_format, when(f.created_at)])));
  });
  main.append(h("h1", {}, "Firmware"), can(session.role, "write") ? uploader(() => lastModel, stop.refresh) : null, list);
  return stop;
}

function uploader(defaultModel, uploaded) {
  const fileInput = h("input", { type: "file", id: "fw-file", accept: ".bin,application/octet-stream" });
  const preview = h("div", { id: "fw-preview", "aria-live": "polite" });
  const zone = h("div", { class: "dropzone", id: "fw-drop" },
    h("label", { for: "fw-file" }, "Firmware image (.bin)"), fileInput,
    h("p", { class: "muted" }, "Drop a .bin here, or choose one. Nothing is sent until you confirm."));
  zone.addEventListener("dragover", (e) => (e.preventDefault(), zone.classList.add("over")));
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = e.dataTransfer?.files?.[0];
    if (file) void show(file);
  });
  fileInput.addEventListener("change", () => fileInput.files?.[0] && void show(fileInput.files[0]));

  async function show(file) {
    fill(preview, h("p", { class: "muted" }, `Reading ${file.name}…`));
    const data = new Uint8Array(await file.arrayBuffer());
    const info = await inspectImage(data);
    fill(preview, describe(file, info), confirmForm(file, info, defaultModel(), (fw) => {
      fill(preview);
      fileInput.value = "";
      if (fw) uploaded();
    }));
  }
  return h("section", { class: "card", "aria-labelledby": "upload-title" }, h("h2", { id: "upload-title" }, "Upload"), zone, preview);
}

function describe(file, info) {
  const d = info.appDesc;
  const rows = [
    ["File", `${file.name} · ${bytes(info.size)}`],
    ["SHA-256", h("code", { "data-field": "sha256" }, info.sha256)],
    ["Image check", h("span", { "data-field": "verdict", class: info.ok ? "ok" : "error" }, info.ok ? "valid ESP app image" : info.problems.join("; "))],
  ];
  if (info.header) rows.push(["Chip id / segments", `${info.header.chipId} / ${info.segments.length}`]);
  if (info.checksum) rows.push(["Checksum byte", `stored 0x${hex(info.checksum.stored)}, computed 0x${hex(info.checksum.computed)}`]);
  if (info.appendedSha256) rows.push(["Appended SHA-256", info.appendedSha256.stored === info.appendedSha256.computed ? "matches" : `stored ${info.appendedSha256.stored}`]);
  if (d) {
    rows.push(["Version", h("strong", { "data-field": "version" }, d.version)], ["Project", d.projectName], ["Built", `${d.date} ${d.time}`],
      ["ESP-IDF", d.idfVer], ["Secure version", String(d.secureVersion)], ["ELF SHA-256", h("code", {}, d.elfSha256)]);
  }
  return h("dl", { class: "facts", "aria-label": "Parsed image" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function confirmForm(file, info, model, done) {
  const name = h("input", { id: "fw-name", required: true, value: info.appDesc?.projectName ?? file.name.replace(/\.bin$/, "") });
  const version = h("input", { id: "fw-version", required: true, value: info.appDesc?.version ?? "", readonly: Boolean(info.appDesc) });
  const deviceModel = h("input", { id: "fw-model", required: true, value: model });
  const changelog = h("input", { id: "fw-changelog" });
  const submit = h("button", { type: "submit" }, "Confirm upload");
  const form = h("form", { class: "inline-form", "aria-label": "Confirm upload" },
    field("Name", name), field("Version", version), field("Device model", deviceModel), field("Changelog", changelog),
    h("div", { class: "actions" }, submit, h("button", { type: "button", class: "secondary", onclick: () => done(null) }, "Discard")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    const body = new FormData();
    body.append("metadata", JSON.stringify({ name: name.value, version: version.value, device_model: deviceModel.value, ...(changelog.value ? { changelog: changelog.value } : {}) }));
    body.append("file", file, file.name);
    try {
      const fw = await api("POST", paths.firmwareList(), body);
      toast(`Uploaded ${fw.version} as ${fw.firmware_id} (server SHA-256 ${fw.checksum_sha256 === info.sha256 ? "matches" : "DIFFERS"})`);
      done(fw);
    } catch (err) {
      toast(`Upload refused: ${err.message}`, "error");
      submit.disabled = false;
    }
  });
  return form;
}

const hex = (n) => n.toString(16).padStart(2, "0");
