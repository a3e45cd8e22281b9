// `ota-server device-cert`: a client certificate for one device from the generated CA, written to files and recorded as
// the device's credential (listed by `api-key list`); refused without a generated CA or with a bad device id.
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { testDatabase } from "../support/test-database";
import { testTls } from "../helpers/tls";

const bin = new URL("../../bin/ota-server.js", import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), "ota-device-cert-"));
const out = join(dataDir, "certs");
const database = await testDatabase(dataDir);
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args, "--data-dir", dataDir], { encoding: "utf8", timeout: 30_000, env: database.env });

afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true });
  await database.dispose();
});

describe("ota-server device-cert", () => {
  it("refuses without a generated CA, and a bad device id", () => {
    const none = run("device-cert", "dev-1", "--out", out);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/no generated CA in .*tls/);
    expect(run("device-cert", "bad id", "--out", out).status).toBe(2);
    expect(existsSync(out)).toBe(false);
  });

  it("the server's mutual TLS flags need TLS, and one CA", () => {
    const log = ["--log-file", join(dataDir, "server.log"), "--port", "0", "--no-mqtt"];
    const plain = run("--host", "127.0.0.1", "--device-certs", ...log);
    expect(plain.status).toBe(2);
    expect(plain.stderr).toMatch(/--device-certs and --tls-client-ca need TLS/);
    const both = run("--insecure-http", "--device-certs", "--tls-client-ca", "ca.pem", ...log);
    expect(both.status).toBe(2);
  });

  it("issues a certificate naming the device, signed by the data dir's CA, recorded as its credential", () => {
    // The CA a first start generates (the shared test one, to spare an RSA key generation).
    const t = testTls();
    mkdirSync(join(dataDir, "tls"), { recursive: true });
    writeFileSync(join(dataDir, "tls", "ca.pem"), t.ca.cert);
    writeFileSync(join(dataDir, "tls", "ca-key.pem"), t.ca.key, { mode: 0o600 });
    const r = run("device-cert", "dev-1", "--out", out);
    expect(r.status, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout) as { cert: string; key: string; fingerprint: string; key_id: string };
    const cert = new X509Certificate(readFileSync(printed.cert));
    expect(cert.subject).toBe("CN=dev-1");
    expect(cert.verify(new X509Certificate(t.ca.cert).publicKey)).toBe(true);
    expect(cert.fingerprint256).toBe(printed.fingerprint);
    expect(statSync(printed.key).mode & 0o077).toBe(0);
    const list = JSON.parse(run("api-key", "list").stdout) as { api_keys: { key_id: string; device_id: string; key_prefix: string; revoked: boolean }[] };
    expect(list.api_keys).toContainEqual(expect.objectContaining({ key_id: printed.key_id, device_id: "dev-1", key_prefix: expect.stringMatching(/^x509:/), revoked: false }));
    // A second certificate revokes the first.
    const again = JSON.parse(run("device-cert", "dev-1", "--out", out).stdout) as { key_id: string };
    const after = JSON.parse(run("api-key", "list").stdout) as { api_keys: { key_id: string; revoked: boolean }[] };
    expect(after.api_keys.find((k) => k.key_id === printed.key_id)?.revoked).toBe(true);
    expect(after.api_keys.find((k) => k.key_id === again.key_id)?.revoked).toBe(false);
  }, 60_000);
});
