// Reliability harness 4 (in process): seeded malformed requests across every endpoint of the OpenAPI document
// must never produce a 5xx and the server must keep serving; every endpoint × {no credential, bad token, bad
// API key, expired token, wrong role, another device's credential} answers 401/403; an oversized upload is
// refused without filling the disk.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Harness } from "../server/harness";
import { api, asAdmin, devToken, firmwareForm, randomBytes, registerDevice, startHarness, uploadFirmware } from "../server/harness";
import { storedState } from "./stored-state";
import { FULL, printCounts, seededRandom } from "./support";

interface Route {
  method: string;
  path: string;
  roles: string[] | null;
  public: boolean;
  params: string[];
  multipart: boolean;
  bodyProps: Record<string, { type?: string | string[] }>;
  queryProps: string[];
  /** Upper bounds of the numeric query parameters. */
  queryMax: Record<string, number>;
}

const VALID_BODIES: Record<string, unknown> = {
  "POST /api/v1/updates/{update_id}/status": { status: "downloading", progress: 1 },
  "POST /api/v1/devices/{device_id}/health": { version: "1.0.0", reset_reason: "power_on", uptime_s: 1, crash_reboots: 0 },
};

function routesOf(doc: any): Route[] {
  const out: Route[] = [];
  for (const [path, ops] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(ops)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const content = op.requestBody?.content ?? {};
      out.push({
        method: method.toUpperCase(),
        path,
        roles: op["x-roles"] ?? null,
        public: op["x-public"] === true,
        params: (op.parameters ?? []).filter((p: any) => p.in === "path").map((p: any) => p.name),
        multipart: "multipart/form-data" in content || (op.description ?? "").includes("multipart"),
        bodyProps: content["application/json"]?.schema?.properties ?? {},
        queryProps: (op.parameters ?? []).filter((p: any) => p.in === "query").map((p: any) => p.name),
        queryMax: Object.fromEntries((op.parameters ?? []).filter((p: any) => p.in === "query" && p.schema?.maximum !== undefined).map((p: any) => [p.name, p.schema.maximum])),
      });
    }
  }
  return out;
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return n;
}

describe("server under hostile requests", () => {
  let h: Harness;
  let routes: Route[];
  const ids: Record<string, string> = {};
  const creds: Record<string, Record<string, string>> = {};

  beforeAll(async () => {
    h = await startHarness();
    const doc = await api(h, "GET", "/docs/openapi.json", asAdmin(h));
    expect(doc.status).toBe(200);
    routes = routesOf(doc.body);
    // Real resources, so that checks past authentication have something to find.
    const keyA = await registerDevice(h, "dev-a", { device_model: "IOT-2024" });
    const keyB = await registerDevice(h, "dev-b", { device_model: "IOT-2024" });
    const fw = await uploadFirmware(h, { version: "2.0.0" }, randomBytes(4096, 3));
    const upd = await api(h, "POST", "/api/v1/devices/dev-a/update", { ...asAdmin(h), body: { firmware_id: fw.firmware_id } });
    expect(upd.status).toBeLessThan(300);
    await api(h, "POST", "/api/v1/groups", { ...asAdmin(h), body: { name: "g1" } });
    const camp = await api(h, "POST", "/api/v1/campaigns", { ...asAdmin(h), body: { name: "c1", firmware_id: fw.firmware_id, target_devices: ["dev-b"] } });
    const keys = await api(h, "GET", "/api/v1/keys", asAdmin(h));
    Object.assign(ids, {
      device_id: "dev-a", firmware_id: fw.firmware_id, update_id: upd.body.update_id, name: "g1",
      campaign_id: camp.body.campaign_id ?? camp.body.id ?? "none", key_id: keys.body.keys?.[0]?.key_id ?? "none",
      base_sha256: "0".repeat(64), // a delta patch's base image (a well-formed SHA-256)
    });
    const token = async (role: string, extra: Record<string, unknown> = {}) => ({ authorization: `Bearer ${(await devToken(h, { user_id: `u-${role}`, role, ...extra })).access_token}` });
    creds.admin = { authorization: `Bearer ${h.admin}` };
    creds.operator = await token("operator");
    creds.viewer = await token("viewer");
    creds.deviceA = { "x-api-key": keyA };
    creds.deviceB = { "x-api-key": keyB };
    creds.deviceBJwt = await token("device", { device_id: "dev-b" });
    creds.expired = await token("admin", { expires_in: 60 });
    h.clock.advance(120_000); // the 60-second token is now expired; the others are good for hours
  });
  afterAll(async () => h?.close());

  const fill = (path: string, values: Record<string, string> = ids) => path.replace(/\{(\w+)\}/g, (_, n: string) => encodeURIComponent(values[n] ?? "x"));

  async function call(r: Route, headers: Record<string, string>, path = fill(r.path), body?: string | Uint8Array, contentType?: string) {
    const hdrs: Record<string, string> = { ...headers };
    let payload: string | Uint8Array | undefined = body;
    if (payload === undefined && r.method !== "GET" && r.method !== "DELETE") {
      // A body that passes validation where we know one, so the check after it (device scope) is reached.
      payload = JSON.stringify(VALID_BODIES[`${r.method} ${r.path}`] ?? {});
      hdrs["content-type"] = "application/json";
    }
    if (contentType) hdrs["content-type"] = contentType;
    const res = await fetch(h.server.url + path, { method: r.method, headers: hdrs, body: payload as RequestInit["body"] });
    await res.arrayBuffer();
    return res.status;
  }

  it("the OpenAPI document lists every route with who may call it", () => {
    expect(routes.length).toBeGreaterThan(30);
    for (const r of routes) expect(r.public || r.roles !== null || r.path === "/api/v1/auth/whoami", `${r.method} ${r.path}`).toBe(true);
  });

  it("auth matrix: every endpoint × {no credential, bad token, bad API key, expired token, wrong role, another device's credential}", async () => {
    const failures: string[] = [];
    let cells = 0;
    const expectStatus = async (r: Route, who: string, headers: Record<string, string>, want: number[]) => {
      cells++;
      const status = await call(r, headers);
      if (!want.includes(status)) failures.push(`${r.method} ${r.path} as ${who}: ${status}, want ${want.join("/")}`);
    };
    for (const r of routes) {
      if (r.public) continue;
      await expectStatus(r, "nobody", {}, [401]);
      await expectStatus(r, "bad token", { authorization: "Bearer not.a.jwt" }, [401]);
      await expectStatus(r, "forged token", { authorization: `Bearer ${h.admin.slice(0, -4)}AAAA` }, [401]);
      await expectStatus(r, "bad API key", { "x-api-key": "ota_dev_nonsense" }, [401]);
      await expectStatus(r, "expired token", creds.expired!, [401]);
      if (r.roles) {
        const wrong = ["viewer", "operator", "device"].find((role) => !r.roles!.includes(role));
        if (wrong) await expectStatus(r, `wrong role ${wrong}`, wrong === "device" ? creds.deviceA! : creds[wrong]!, [403]);
        // Device B acting on device A's things: its device id, its update, firmware not offered to B.
        if (!r.roles.includes("device")) {
          await expectStatus(r, "device B (API key)", creds.deviceB!, [403]);
          await expectStatus(r, "device B (JWT)", creds.deviceBJwt!, [403]);
        } else if (r.params.length > 0) {
          await expectStatus(r, "device B (API key) on A's resource", creds.deviceB!, [403]);
          await expectStatus(r, "device B (JWT) on A's resource", creds.deviceBJwt!, [403]);
        }
      }
    }
    printCounts(`auth matrix: ${routes.length} routes, ${cells} cells, wrong answers: ${failures.length}`);
    expect(failures).toEqual([]);
  }, 60_000);

  it(`${FULL ? 10_000 : 1_000} seeded malformed requests: never a 5xx, and the server keeps serving`, async () => {
    const total = FULL ? 10_000 : 1_000;
    const rand = seededRandom(2024);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const tricks = ["..", "../../etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%00", "a%00b", "x".repeat(3000), "%F0%9F%98%80", "'%20OR%201=1--", "%25", "%zz", ".", "%20", "dev-a%2Fupdate", "dev-a/../dev-b", "CON", "-1", "0x10", "null", "undefined", "__proto__", "constructor"];
    const junkValues = [null, true, 0, -1, 1.5, 1e308, "", "x".repeat(70_000), [], [1, "a"], {}, { $gt: "" }, "1.0.0\u0000", "😀".repeat(100), "\u001b[2J\r\nINFO forged", JSON.parse("[".repeat(40) + "]".repeat(40))];
    const multipartBodies = (): [string | Uint8Array, string] => {
      const b = "----fuzz" + Math.floor(rand() * 1e9);
      const part = (name: string, content: string, file = false) =>
        `--${b}\r\nContent-Disposition: form-data; name="${name}"${file ? '; filename="f.bin"' : ""}\r\n${file ? "Content-Type: application/octet-stream\r\n" : ""}\r\n${content}\r\n`;
      return pick<[string | Uint8Array, string]>([
        [`--${b}\r\nContent-Disposition: form-data; name="file"\r\n\r\nunterminated`, `multipart/form-data; boundary=${b}`],
        [part("metadata", "{not json") + part("file", "abc", true) + `--${b}--\r\n`, `multipart/form-data; boundary=${b}`],
        [part("metadata", JSON.stringify({ device_model: 7 })) + part("file", "abc", true) + `--${b}--\r\n`, `multipart/form-data; boundary=${b}`],
        [part("metadata", JSON.stringify({ device_model: "M" })) + `--${b}--\r\n`, `multipart/form-data; boundary=${b}`],
        [part("file", "abc", true) + part("file", "def", true) + part("file", "ghi", true) + `--${b}--\r\n`, `multipart/form-data; boundary=${b}`],
        [part("metadata", JSON.stringify({ device_model: "M", version: "../../x" })) + part("file", "\u00e9" + "z".repeat(100), true) + `--${b}--\r\n`, `multipart/form-data; boundary=${b}`],
        [part("metadata", JSON.stringify({ device_model: "M" })) + part("file", "", true) + `--${b}--\r\n`, `multipart/form-data; boundary=${b}`],
        [part("x".repeat(300), "y") + `--${b}--\r\n`, `multipart/form-data; boundary=${b}`],
        ["no boundary at all", "multipart/form-data"],
        [`--${b}\r\n\r\n\r\n--${b}--`, `multipart/form-data; boundary=${b}`],
        // Point 5 of issue 11: metadata over the cap as a file part, a raw blob for an ESP32 model, a version devices cannot parse.
        [`--${b}\r\nContent-Disposition: form-data; name="metadata"; filename="m.json"\r\n\r\n{"device_model":"M","description":"${"d".repeat(70_000)}"}\r\n` + part("file", "abc", true) + `--${b}--\r\n`, `multipart/form-data; boundary=${b}`],
        [part("metadata", JSON.stringify({ device_model: "ESP32-DEVKIT", version: "5.0.0" })) + part("file", "not an image", true) + `--${b}--\r\n`, `multipart/form-data; boundary=${b}`],
        [part("metadata", JSON.stringify({ device_model: "M", version: "v-next" })) + part("file", "abc", true) + `--${b}--\r\n`, `multipart/form-data; boundary=${b}`],
        [part("metadata", JSON.stringify({ device_model: "M", version: "5.0.1", metadata: { n: "\u001b[2J".repeat(5000) } })) + part("file", "abc", true) + `--${b}--\r\n`, `multipart/form-data; boundary=${b}`],
      ]);
    };
    const five: string[] = [];
    const counts: Record<string, number> = {};
    // A refused request stores nothing: no row written, no blob, no temporary file.
    const storedByRefused: string[] = [];
    let refusedCount = 0;
    for (let i = 0; i < total; i++) {
      const kindFirst = rand();
      // Multipart bodies go to the upload route half of the time (elsewhere they are just a wrong content type).
      const upload = routes.find((x) => x.multipart);
      const r = kindFirst < 0.06 && upload ? upload : pick(routes);
      const kind = r === upload && kindFirst < 0.06 ? "multipart" : pick(["path", "json", "types", "huge", "deep", "ctype", "query", "multipart", "method"] as const);
      counts[kind] = (counts[kind] ?? 0) + 1;
      let path = fill(r.path);
      let body: string | Uint8Array | undefined;
      let ctype: string | undefined;
      let method = r.method;
      const auth = rand() < 0.85 ? creds.admin! : pick([creds.deviceA!, creds.viewer!, creds.operator!]);
      switch (kind) {
        case "path":
          path = r.params.length ? fill(r.path, Object.fromEntries(r.params.map((p) => [p, "\u0000"]))).replace(/%00/g, () => pick(tricks)) : path + "/" + pick(tricks);
          break;
        case "json":
          body = pick(["{", "[", "{\"a\":", "null", "\"str\"", "{}{}", "\u0000", "{\"__proto__\":{\"admin\":true}}", "NaN", "1e999999"]);
          ctype = "application/json";
          break;
        case "types": {
          const props = Object.keys(r.bodyProps);
          const obj: Record<string, unknown> = {};
          for (const p of props) if (rand() < 0.7) obj[p] = pick(junkValues);
          if (rand() < 0.3) obj[`unknown_${i}`] = pick(junkValues);
          body = JSON.stringify(rand() < 0.1 ? pick(junkValues) : obj);
          ctype = "application/json";
          break;
        }
        case "huge":
          body = rand() < 0.5 ? JSON.stringify({ name: "x".repeat(1_200_000) }) : "[" + "1,".repeat(600_000) + "1]";
          ctype = "application/json";
          break;
        case "deep":
          body = rand() < 0.5 ? "[".repeat(20_000) + "]".repeat(20_000) : `{"a":${"[".repeat(33)}${"]".repeat(33)}}`; // far and just over the depth limit
          ctype = "application/json";
          break;
        case "ctype":
          body = pick(["<xml/>", "a=b&c=d", "\u0000\u0001"]);
          ctype = pick(["application/xml", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-16", "image/png"]);
          break;
        case "query": {
          const names = [...r.queryProps, "limit", "offset", "status", "x"];
          const aboveMax = Object.entries(r.queryMax).map(([n, max]) => `${n}=${max + 1}`); // just above each upper bound
          path += "?" + Array.from({ length: 1 + Math.floor(rand() * 4) }, () => (aboveMax.length && rand() < 0.3 ? pick(aboveMax) : `${pick(names)}=${pick(["-1", "abc", "1e309", "%zz", "", "9".repeat(400), "true", "[]", "0x1", "%1B%5B2J"])}`)).join("&");
          break;
        }
        case "multipart":
          [body, ctype] = multipartBodies();
          break;
        case "method":
          method = pick(["PUT", "PATCH", "DELETE", "OPTIONS", "POST", "GET"]);
          break;
      }
      let status: number;
      const before = storedState(h);
      try {
        status = await call({ ...r, method }, auth, path, method === "GET" || method === "HEAD" ? undefined : body, method === "GET" ? undefined : ctype);
      } catch (e) {
        five.push(`#${i} ${kind} ${method} ${path.slice(0, 120)}: connection failed ${(e as Error).message}`);
        continue;
      }
      if (status >= 500) five.push(`#${i} ${kind} ${method} ${path.slice(0, 120)}: ${status}`);
      if (status >= 400) {
        refusedCount++;
        if (storedState(h) !== before) storedByRefused.push(`#${i} ${kind} ${method} ${path.slice(0, 120)}: ${status}`);
      }
    }
    const health = await fetch(h.server.url + "/health");
    // Serving means serving others: the flood's own credential and address may rightly be rate limited by now.
    const fresh = h.server.ctx.apiKeys.create("admin", { name: "after-the-flood" }).api_key;
    const list = await api(h, "GET", "/api/v1/devices", { apiKey: fresh });
    printCounts(`malformed requests: ${total} over ${routes.length} routes (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ")}), 5xx: ${five.length}, refused: ${refusedCount}, refused but stored something: ${storedByRefused.length}, still serving: ${health.status === 200 && list.status === 200}`);
    expect(five, five.slice(0, 10).join("\n")).toEqual([]);
    expect(storedByRefused, storedByRefused.slice(0, 10).join("\n")).toEqual([]);
    expect(health.status).toBe(200);
    expect(list.status).toBe(200);
  }, FULL ? 600_000 : 60_000);

  it("an oversized upload is refused without filling the disk", async () => {
    const small = await startHarness({ maxUploadBytes: 1024 * 1024 });
    try {
      const before = dirBytes(small.dataDir);
      const big = randomBytes(8 * 1024 * 1024, 5);
      const r = await api(small, "POST", "/api/v1/firmware", { ...asAdmin(small), body: firmwareForm({ device_model: "IOT-2024", name: "big", version: "9.9.9" }, big) });
      expect(r.status).toBe(413);
      const grown = dirBytes(small.dataDir) - before;
      printCounts(`oversized upload: 8 MiB against a 1 MiB limit → ${r.status}, data dir grew by ${grown} bytes`);
      expect(readdirSync(join(small.dataDir, "tmp"))).toEqual([]);
      expect(grown).toBeLessThan(1024 * 1024);
      expect((await api(small, "GET", "/api/v1/firmware", asAdmin(small))).body.total).toBe(0);
      expect((await fetch(small.server.url + "/health")).status).toBe(200);
    } finally {
      await small.close();
    }
  }, 30_000);
});
