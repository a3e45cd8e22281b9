// ESP32 application entry (mcconfig -m -p esp32 manifest.json). Moddable's setup/network joins Wi-Fi and
// sets the clock by SNTP before it calls this default export.
import config from "mc/config";
import Resource from "Resource";
import { Agent } from "./core/agent";
import type { AgentConfig, SelfTestCheck, TrustedKey } from "./core/config";
import type { SignatureAlg } from "./protocol/manifest";
import { createEspPorts } from "./esp32/ports";
import { keepWifiJoined } from "./esp32/wifi";

// ---- Your application's post-update self-test checks -------------------------------------------------
// After an update the agent runs these once network, server and MQTT are shown to work. Throw or return
// false to reject the new firmware: the agent then rolls back to the previous slot. Keep them quick.
const selfTests: Record<string, SelfTestCheck> = {
  // sensor: () => readSensor() !== undefined,
};
// -------------------------------------------------------------------------------------------------------

/** "keyId:base64,keyId:ecdsa-p256-sha256:base64,base64,..." (mcconfig overrides are strings; no alg: ed25519). */
function parseKeys(text: string): TrustedKey[] {
  const keys: TrustedKey[] = [];
  for (const item of text.split(",")) {
    const entry = item.trim();
    if (!entry) continue;
    const parts = entry.split(":"); // base64 has no ":"
    if (parts.length === 1) keys.push({ publicKey: entry });
    else if (parts.length === 2) keys.push({ keyId: parts[0], publicKey: parts[1]! });
    else keys.push({ keyId: parts[0], alg: parts[1] as SignatureAlg, publicKey: parts[2]! });
  }
  return keys;
}

function text(name: string, fallback = ""): string {
  const value: unknown = config[name];
  return value === undefined || value === null ? fallback : String(value);
}

/** The pinned CAs: DER resources (manifest.json "resources", written by `npm run esp32:prebuild`). */
function caResources(): string[] {
  const names = text("caCerts").split(",").map((n) => n.trim()).filter((n) => n.length > 0);
  for (const name of names) if (!Resource.exists(name)) throw new Error(`pinned CA resource ${name} is not in the build (npm run esp32:prebuild)`);
  return names;
}

export default function main(): void {
  const deviceId = text("deviceId");
  const mqttUrl = text("mqttUrl");
  const cas = caResources();
  const ports = createEspPorts({
    tls: { caResources: cas },
    mqtt: mqttUrl
      ? { url: mqttUrl, clientId: deviceId, user: text("mqttUser") || undefined, password: text("mqttPassword") || undefined }
      : undefined,
    logLevel: text("logLevel", "info") as "debug" | "info" | "warn" | "error",
  });
  const agentConfig: AgentConfig = {
    deviceId,
    deviceModel: text("deviceModel", "esp32"),
    hardwareVersion: text("hardwareVersion", "1"),
    serverUrl: text("serverUrl"),
    apiKey: text("apiKey"),
    trustedKeys: parseKeys(text("trustedKeys")),
    // The manifest signature algorithms to accept, e.g. "ecdsa-p256-sha256"; empty: both native verifiers.
    ...(text("signatureAlgs") ? { signatureAlgs: text("signatureAlgs").split(",").map((a) => a.trim() as SignatureAlg) } : {}),
    // The firmware team's release keys (ota-sign keygen); with requireReleaseSignature="1" only released images install.
    releaseKeys: parseKeys(text("releaseKeys")),
    requireReleaseSignature: text("requireReleaseSignature") === "1",
    pinnedCas: cas,
    // SNTP ran before main; a clock still in 1970 must not judge manifest validity windows.
    clockTrusted: () => Date.now() > 1_700_000_000_000,
    selfTests,
  };
  // setup/network joined once; rejoin after every drop (the agent's polls fail meanwhile and carry on after).
  if (text("ssid")) keepWifiJoined(text("ssid"), text("password"), (message) => ports.log.log("info", message));
  const agent = new Agent(agentConfig, ports);
  agent.start().catch((e: unknown) => ports.log.log("error", "agent stopped", { error: String(e) }));
}
