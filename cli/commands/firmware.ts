// ota firmware upload|list: an image's version and name come from its app descriptor, as the server
// reads them too; a file that is not an ESP32 app image is refused before anything is sent.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseCommand, str } from "../args";
import { readConfig, configPath } from "../config";
import { firmwareLines } from "../format";
import { type Command, commandOf, type Io, show } from "../io";
import { CliFailure, UsageError } from "../usage";
import { ESP_IMAGE_MAGIC, readAppDesc } from "../../esp-image/app-image";
import { ROUTES, queryString } from "../../device/protocol/paths";

export async function firmware(sub: string | undefined, args: string[], io: Io): Promise<number> {
  const topic = ["firmware", ...(sub ? [sub] : [])];
  if (sub === "upload") {
    const parsed = parseCommand(args, topic, { model: { type: "string" }, name: { type: "string" }, version: { type: "string" }, description: { type: "string" } }, ["FILE"]);
    return upload(commandOf(parsed, io));
  }
  if (sub === "list") {
    const parsed = parseCommand(args, topic, { model: { type: "string" } });
    const cmd = commandOf(parsed, io);
    const page = await cmd.client().get(ROUTES.firmwareList + queryString({ device_model: str(cmd.values, "model"), limit: 100 }));
    show(cmd, page, () => (page.firmware.length === 0 ? ["no firmware"] : page.firmware.map((f: any) => firmwareLines(f)[0]!)));
    return 0;
  }
  throw new UsageError(sub === undefined ? "firmware needs a command: upload, list" : `unknown firmware command ${JSON.stringify(sub)}`, ["firmware"]);
}

async function upload(cmd: Command): Promise<number> {
  const file = cmd.positionals[0]!;
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new CliFailure(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const desc = bytes[0] === ESP_IMAGE_MAGIC ? readAppDesc(bytes) : null;
  if (!desc) throw new CliFailure(`${file} is not an ESP32 app image (no esp_app_desc_t at offset 0x20)`);
  const model = str(cmd.values, "model") ?? readConfig(configPath(cmd.io.env)).model;
  if (!model) throw new UsageError("firmware upload needs --model MODEL (or a default from `ota login --model`)", ["firmware", "upload"]);
  const version = str(cmd.values, "version") ?? desc.version;
  const meta = { name: str(cmd.values, "name") ?? desc.projectName, version, device_model: model, description: str(cmd.values, "description") };
  const form = new FormData();
  form.append("metadata", JSON.stringify(meta));
  form.append("file", new Blob([bytes], { type: "application/octet-stream" }), basename(file));
  const fw = await cmd.client().request("POST", ROUTES.firmwareList, form);
  show(cmd, fw, () => [`uploaded ${basename(file)}`, ...firmwareLines(fw)]);
  return 0;
}
