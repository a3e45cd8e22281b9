import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { testDatabase } from "../support/test-database";

const bin = new URL("../../bin/ota-server.js", import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), "ota-cli-"));
const database = await testDatabase(dataDir);
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args, "--data-dir", dataDir], { encoding: "utf8", timeout: 20_000, env: database.env });
const keysOf = (out: string, algorithm = "ed25519") => (JSON.parse(out) as { keys: Array<{ key_id: string; public_key: string; retired: boolean; algorithm: string }> }).keys.filter((k) => k.algorithm === algorithm);

describe("ota-server CLI", () => {
  afterAll(async () => {
    rmSync(dataDir, { recursive: true, force: true });
    await database.dispose();
  });

  it("keys: creates a key on first use, rotates keeping the old one, retires", () => {
    const first = run("keys");
    expect(first.status, first.stderr).toBe(0);
    const [k1] = keysOf(first.stdout);
    expect(Buffer.from(k1!.public_key, "base64")).toHaveLength(32);
    // An ECDSA P-256 key too, from the first start: every manifest is signed with both (the 65-byte point).
    const [p1] = keysOf(first.stdout, "ecdsa-p256-sha256");
    expect(Buffer.from(p1!.public_key, "base64")).toHaveLength(65);
    const rotatedP = keysOf(run("keys", "rotate", "ecdsa-p256-sha256").stdout, "ecdsa-p256-sha256");
    expect(rotatedP.map((k) => k.key_id)).toEqual([p1!.key_id, expect.stringMatching(/^k_[0-9a-f]{16}$/)]);
    expect(keysOf(run("keys", "retire", p1!.key_id).stdout, "ecdsa-p256-sha256")[0]).toMatchObject({ key_id: p1!.key_id, retired: true });
    expect(run("keys", "retire", rotatedP[1]!.key_id).stderr).toMatch(/last active ecdsa-p256-sha256 key/);
    const rotated = keysOf(run("keys", "rotate").stdout);
    expect(rotated.map((k) => k.key_id)).toEqual([k1!.key_id, expect.stringMatching(/^k_[0-9a-f]{16}$/)]);
    const retired = keysOf(run("keys", "retire", k1!.key_id).stdout);
    expect(retired[0]).toMatchObject({ key_id: k1!.key_id, retired: true });
    const refuse = run("keys", "retire", rotated[1]!.key_id);
    expect(refuse.status).toBe(2);
    expect(refuse.stderr).toMatch(/last active ed25519 key/);
  });

  it("api-key list shows keys by id without the secret; api-key revoke refuses one from then on", async () => {
    const created = JSON.parse(run("api-key", "create", "--role", "viewer", "--name", "to-revoke").stdout) as { api_key: string; key_id: string };
    const listed = JSON.parse(run("api-key", "list", "--role", "viewer").stdout) as { api_keys: Array<{ key_id: string; name: string; revoked: boolean }> };
    expect(listed.api_keys.find((k) => k.name === "to-revoke")).toMatchObject({ key_id: created.key_id, revoked: false });
    expect(JSON.stringify(listed)).not.toContain(created.api_key);
    const revoked = run("api-key", "revoke", created.key_id);
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ key_id: created.key_id, revoked: true });
    // The store a server would consult: the key no longer authenticates.
    const { openDatabase } = await import("../../server-stub/db");
    const { ApiKeyStore } = await import("../../server-stub/auth/api-keys");
    const db = openDatabase({ sqlitePath: join(dataDir, "ota.sqlite"), databaseUrl: database.databaseUrl });
    try {
      expect(new ApiKeyStore(db, { now: () => Date.now() } as never).lookup(created.api_key)).toBeNull();
    } finally {
      db.close();
    }
    const missing = run("api-key", "revoke", "ak_0000000000000000");
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no API key ak_0000000000000000/);
    expect(run("api-key", "revoke").status).toBe(2);
  });

  it("keys marks the signing key of each algorithm, the ed25519 one first", () => {
    const out = JSON.parse(run("keys").stdout) as { signing_key_id: string; keys: Array<{ key_id: string; retired: boolean; signing: boolean; algorithm: string }> };
    const signing = out.keys.filter((k) => k.signing);
    expect(signing.map((k) => k.algorithm)).toEqual(["ed25519", "ecdsa-p256-sha256"]);
    expect(signing[0]).toMatchObject({ key_id: out.signing_key_id, retired: false });
    const ed25519 = out.keys.filter((k) => k.algorithm === "ed25519");
    expect(ed25519.at(-1)!.key_id).toBe(out.signing_key_id); // the newest active key signs
  });

  it("api-key create prints a key once; bad usage is one line plus a hint, exit 2", () => {
    const r = run("api-key", "create", "--role", "operator", "--name", "ci");
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ role: "operator", name: "ci", api_key: expect.stringMatching(/^ota_ope_/) });
    const bad = run("api-key", "create", "--role", "device");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe("ota-server: --role must be admin, operator or viewer\n  (see `ota-server api-key --help`)\n");
    for (const args of [["frobnicate"], ["--bogus"], ["--port", "70000"], ["keys", "twist"], ["--event-retention-days", "0"], ["--event-retention-days", "x"]]) {
      const r = run(...args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr.trimEnd().split("\n"), r.stderr).toHaveLength(2);
      expect(r.stderr).not.toMatch(/usage:|    at /);
    }
    expect(run("--help").stdout).toMatch(/ota-server keys/);
    for (const sub of ["keys", "api-key", "wait", "stop"]) expect(run(sub, "--help").stdout).toMatch(new RegExp(`^usage:\n  ota-server ${sub}`));
  });

  it("external broker flags: a password in --mqtt-url is refused (and not echoed), bad values are one line, exit 2", () => {
    const secret = run("--mqtt-url", "mqtt://ota-admin:hunter2-secret@localhost:1883");
    expect(secret.status).toBe(2);
    expect(secret.stderr).toMatch(/^ota-server: --mqtt-url must not carry a password: .*\$OTA_MQTT_PASSWORD\n/);
    expect(secret.stderr).not.toContain("hunter2");
    for (const args of [["--mqtt-url", "http://localhost:1883"], ["--mqtt-url", "mqtt://localhost:1883/x"], ["--mqtt-url", "not a url"], ["--mqtt-url", "mqtt://h:1", "--mqtt-provisioning", "magic"], ["--drain-seconds", "soon"]]) {
      const r = run(...args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr.trimEnd().split("\n"), r.stderr).toHaveLength(2);
    }
  });

  it("refuses a public URL devices could not take, before opening a port", () => {
    const r = run("--public-url", "http://host:8221/a b", "--port", "0", "--no-mqtt", "--no-dev-token");
    expect([r.status, r.stderr]).toEqual([2, expect.stringMatching(/--public-url must be an http\(s\) URL of at most 742/)]);
  });

  it("refuses CDN options devices could not take, or a fallback without a CDN", () => {
    const r = run("--cdn-url", "ftp://cdn", "--port", "0", "--no-mqtt", "--no-dev-token");
    expect([r.status, r.stderr]).toEqual([2, expect.stringMatching(/--cdn-url must be an http\(s\) URL/)]);
    const alone = run("--cdn-fallback-url", "http://backup", "--port", "0", "--no-mqtt", "--no-dev-token");
    expect([alone.status, alone.stderr]).toEqual([2, expect.stringMatching(/--cdn-fallback-url and --cdn-cache-control need --cdn-url/)]);
  });
});
