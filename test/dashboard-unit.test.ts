// The dashboard's own logic, without a browser: its image reader against the project's verifier, its SHA-256
// fallback against OpenSSL's, and the static route's content types and refusal of paths outside its folder.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppImage, inspectImage as verifierInspect } from "../esp-image/app-image";
import { startOtaServer, type OtaServer } from "../server-stub/server";
import { testDatabase, type TestDatabase } from "./support/test-database";
// Plain browser ES modules, loaded here as they are served.
// @ts-expect-error no declarations for the dashboard's JavaScript
import { inspectImage } from "../server-stub/dashboard/image.js";
// @ts-expect-error no declarations for the dashboard's JavaScript
import { sha256Hex } from "../server-stub/dashboard/sha256.js";

describe("dashboard image reader", () => {
  it("reads what the server's verifier reads from a valid image", async () => {
    const bytes = buildAppImage({ version: "2.3.4", projectName: "sensor-app", size: 70_000 });
    const mine = await inspectImage(bytes);
    const theirs = verifierInspect(bytes);
    expect(theirs.error).toBeUndefined();
    expect(mine.ok).toBe(true);
    expect(mine.problems).toEqual([]);
    expect(mine.appDesc).toMatchObject({ version: "2.3.4", projectName: "sensor-app", idfVer: theirs.info.appDesc!.idfVer, elfSha256: theirs.info.appDesc!.appElfSha256 });
    expect(mine.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(mine.checksum).toEqual({ stored: theirs.info.storedChecksum, computed: theirs.info.computedChecksum });
    expect(mine.segments.length).toBe(theirs.info.segments!.length);
    if (theirs.info.storedSha256) expect(mine.appendedSha256).toEqual({ stored: theirs.info.storedSha256, computed: theirs.info.computedSha256 });
  });

  it("names the checksum failure the verifier finds in a corrupted image", async () => {
    const bytes = buildAppImage({ version: "2.3.4" });
    const seg0 = new DataView(bytes.buffer).getUint32(24 + 4, true);
    bytes[24 + 8 + seg0 - 1]! ^= 0x5a; // last byte of segment 0's data
    expect(verifierInspect(bytes).error?.message).toMatch(/checksum/);
    const mine = await inspectImage(bytes);
    expect(mine.ok).toBe(false);
    expect(mine.problems.join(" ")).toMatch(/checksum byte/);
  });

  it("says a non-image is not an ESP app image, and a truncated one where it ends", async () => {
    expect((await inspectImage(new TextEncoder().encode("not firmware"))).problems).toEqual([expect.stringMatching(/not an ESP app image/)]);
    const cut = await inspectImage(buildAppImage({ version: "1.0.0" }).subarray(0, 5000));
    expect(cut.ok).toBe(false);
    expect(cut.problems.join(" ")).toMatch(/truncated/);
  });

  it("computes SHA-256 without crypto.subtle (plain-http LAN pages) as OpenSSL does", async () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 1000, 300_000]) {
      const data = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
      expect(await sha256Hex(data, { subtle: null }), `length ${n}`).toBe(createHash("sha256").update(data).digest("hex"));
    }
  });
});

describe("dashboard static route", () => {
  let server: OtaServer;
  let dir: string;
  let database: TestDatabase;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "ota-dash-unit-"));
    database = await testDatabase(dir);
    server = await startOtaServer({ dataDir: dir, port: 0, host: "127.0.0.1", authPort: null, mqttPort: null, logger: pino({ level: "silent" }), databaseUrl: database.databaseUrl });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    await database.dispose();
  });

  it("serves the page at / and its modules with their content types, without credentials", async () => {
    const page = await server.app.inject({ method: "GET", url: "/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.headers["content-security-policy"]).toMatch(/default-src 'self'/);
    expect(page.body).toContain('src="/dashboard/app.js"');
    const js = await server.app.inject({ method: "GET", url: "/dashboard/views/campaign.js" });
    expect(js.statusCode).toBe(200);
    expect(js.headers["content-type"]).toMatch(/^text\/javascript/);
    expect((await server.app.inject({ method: "GET", url: "/dashboard/style.css" })).headers["content-type"]).toMatch(/^text\/css/);
  });

  it("refuses names outside the folder, dot files and unknown types with a 404 and a code", async () => {
    for (const url of ["/dashboard/../routes/dashboard.ts", "/dashboard/../../bin/ota-server.js", "/dashboard/%2e%2e/%2e%2e/bin/ota-server.js", "/dashboard/..%2f..%2fbin/ota-server.js", "/dashboard/%2e%2e/routes/dashboard.ts", "/dashboard/..%2fapp.ts", "/dashboard/.hidden.js",
      "/dashboard//etc/passwd", "/dashboard/nope.js", "/dashboard/views", "/dashboard/app.ts"]) {
      const r = await server.app.inject({ method: "GET", url });
      expect(r.statusCode, url).toBe(404);
      expect(r.json().error.code, url).toBe("NOT_FOUND");
    }
  });
});
