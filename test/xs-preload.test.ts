// The XS we test on behaves like the XS we ship: every xsnap worker first runs moddable-preload.js, which freezes
// the built-ins as Moddable's linker does after preload, and the agent works there: its error classes (they used to
// assign this.name, which a frozen Error.prototype refuses) and its health reports keyed by the application's names.
import { build } from "esbuild";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AbortedError } from "../device/core/signal";
import { TimeoutError } from "../device/core/timing";
import { TransientError } from "../device/core/failures";
import { UpdateError } from "../device/core/update-error";
import { OtaPortError } from "../device/core/ports";
import { XsWorker } from "../host-sim/xs/xs-worker";
import { deviceHealthPath, type HealthReport } from "../device/protocol";
import type { World } from "./helpers/e2e";
import { device, startWorld, TEST_AGENT } from "./helpers/e2e";
import { api, asAdmin } from "./server/harness";

let worker: XsWorker | null = null;
afterEach(() => worker?.kill());

/** Runs `script` (strict, as Moddable's modules are) in a fresh worker; it hands back one JSON value by `report(v)`. */
async function inXs(script: string): Promise<unknown> {
  let reported: unknown = undefined;
  worker = new XsWorker(async (message) => {
    reported = JSON.parse(new TextDecoder().decode(message));
    return new Uint8Array(0);
  });
  const report = "const report = (v) => issueCommand(new TextEncoder().encode(JSON.stringify(v)).buffer);";
  await worker.evaluate(`"use strict";\n${report}\n${script}`);
  return reported;
}

describe("XS runs freeze the built-ins as Moddable's preload does", () => {
  it("built-in prototypes, namespaces and functions are frozen; the global object is not", async () => {
    const result = await inXs(`
      const frozen = {
        "Object.prototype": Object.prototype, "Function.prototype": Function.prototype, "Array.prototype": Array.prototype,
        "Error.prototype": Error.prototype, "TypeError.prototype": TypeError.prototype, "Map.prototype": Map.prototype,
        "Promise.prototype": Promise.prototype, "Uint8Array.prototype": Uint8Array.prototype,
        "TypedArray.prototype": Object.getPrototypeOf(Uint8Array.prototype), "ArrayIterator": Object.getPrototypeOf([].values()),
        "Math": Math, "JSON": JSON, "Reflect": Reflect, "Date.now": Date.now, "Error": Error, "Array.prototype.push": Array.prototype.push,
        "Array.prototype[@@unscopables]": Array.prototype[Symbol.unscopables],
      };
      const writes = {};
      const attempt = (label, f) => { try { f(); writes[label] = "ok"; } catch (e) { writes[label] = e.constructor.name + ": " + e.message; } };
      attempt("this.name in a subclass", () => new (class E extends Error { constructor() { super("m"); this.name = "E"; } })());
      attempt("Array.prototype.last", () => { Array.prototype.last = 1; });
      attempt("Math.random", () => { Math.random = () => 4; });
      attempt("a global", () => { globalThis.someGlobal = 1; });
      const notFrozen = Object.keys(frozen).filter((k) => !Object.isFrozen(frozen[k]));
      report({ notFrozen, globalFrozen: Object.isFrozen(globalThis), writes });
    `);
    expect(result).toEqual({
      notFrozen: [],
      globalFrozen: false,
      writes: {
        "this.name in a subclass": expect.stringMatching(/^TypeError: .*set name: not writable/),
        "Array.prototype.last": expect.stringMatching(/^TypeError: .*not extensible/),
        "Math.random": expect.stringMatching(/^TypeError: .*set random: not writable/),
        "a global": "ok",
      },
    });
  });

  it("the agent's error classes keep their names on frozen XS, even with their own classes frozen (as if preloaded)", async () => {
    const entry = `
      import { AbortedError } from "./device/core/signal";
      import { TimeoutError } from "./device/core/timing";
      import { TransientError } from "./device/core/failures";
      import { UpdateError } from "./device/core/update-error";
      import { OtaPortError } from "./device/core/ports";
      const classes = [UpdateError, TransientError, AbortedError, TimeoutError, OtaPortError];
      // xslSlot.c fxPrepareHeap freezes a preloaded module's functions and each constructor's prototype.
      for (const c of classes) Object.freeze(c), Object.freeze(c.prototype);
      report(describeAll(UpdateError, TransientError, AbortedError, TimeoutError, OtaPortError));
    `;
    const bundle = await build({ stdin: { contents: entry, resolveDir: process.cwd(), loader: "ts" }, bundle: true, format: "iife", write: false, target: "es2022" });
    const describe = `function describeAll(...c) { return (${describeAll.toString()})(...c); }`;
    const onXs = await inXs(`${describe}\n${bundle.outputFiles[0]!.text}`);
    const onNode = describeAll(UpdateError, TransientError, AbortedError, TimeoutError, OtaPortError);
    expect(onXs).toEqual(onNode);
    expect(onNode.map((e) => e.string)).toEqual([
      "UpdateError: bad signature",
      "TransientError: reset by peer",
      "AbortedError: aborted: stopping",
      "TimeoutError: download timed out after 30000 ms",
      "OtaPortError: image invalid",
    ]);
  });
});

/** What the agent reads of each error class (the same source runs on Node and, stringified, on XS). */
function describeAll(U: typeof UpdateError, T: typeof TransientError, A: typeof AbortedError, Ti: typeof TimeoutError, O: typeof OtaPortError) {
  const errors = [new U("SIGNATURE_INVALID", "bad signature"), new T("reset by peer"), new A("stopping"), new Ti("download", 30000), new O("ESP_ERR_OTA_VALIDATE_FAILED", "image invalid")];
  return errors.map((e) => ({ name: e.name, string: String(e), isError: e instanceof Error, ownName: Object.prototype.hasOwnProperty.call(e, "name"), code: (e as { code?: string }).code ?? null }));
}

describe("the agent on frozen XS", () => {
  let w: World;
  beforeAll(async () => (w = await startWorld("xs", { tls: false })));
  afterAll(async () => w?.close());

  it("reports an application's check named like an Object.prototype property (health reports)", async () => {
    const { dev } = await device(w, "frozen-health", { extra: { agent: { ...TEST_AGENT, selfTests: { constructor: () => true } } } });
    try {
      await dev.powerOn();
      const reports = async () => (await api(w.h, "GET", deviceHealthPath("frozen-health"), asAdmin(w.h))).body.reports as HealthReport[];
      for (let i = 0; i < 100 && (await reports()).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect((await reports())[0]?.checks).toEqual({ constructor: true });
    } finally {
      await dev.powerOff();
    }
  });
});
