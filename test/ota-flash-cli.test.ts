import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../host-sim/cli/ota-flash";
import { PARTITION_TABLE_OFFSET } from "../host-sim/esp/partition-table";

const dir = mkdtempSync(join(tmpdir(), "ota-flash-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const p = (name: string) => join(dir, name);

async function run(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, (l) => out.push(l), (l) => err.push(l));
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("ota-flash happy path", () => {
  it("builds images, creates a flash, installs, boots, confirms, rejects and reports", async () => {
    expect((await run("image", "build", p("a.bin"), "--version", "1.0.0")).code).toBe(0);
    expect((await run("image", "build", p("b.bin"), "--version", "2.0.0", "--secure-version", "3", "--behaviour", "fail-self-test")).code).toBe(0);
    const info = await run("image", "info", p("b.bin"), "--json");
    const parsed = JSON.parse(info.out);
    expect(parsed.valid).toBe(true);
    expect(parsed.appDesc.version).toBe("2.0.0");
    expect(parsed.appDesc.secureVersion).toBe(3);
    expect(parsed.sim.behaviour).toBe("fail-self-test");

    expect((await run("create", p("f.bin"), "--image", p("a.bin"))).code).toBe(0);
    expect((await run("boot", p("f.bin"))).out).toMatch(/booted ota_0: version 1\.0\.0, state VALID/);
    expect((await run("install", p("f.bin"), p("b.bin"))).out).toMatch(/into ota_1/);
    expect((await run("boot", p("f.bin"))).out).toMatch(/booted ota_1: version 2\.0\.0, state PENDING_VERIFY/);
    const rejected = await run("reject", p("f.bin"));
    expect(rejected.code).toBe(0);
    expect(rejected.out).toMatch(/booted ota_0: version 1\.0\.0/);

    const state = JSON.parse((await run("info", p("f.bin"), "--json")).out);
    expect(state.running).toBe("ota_0");
    expect(state.otadata).toEqual([
      { sector: 0, seq: 1, state: "VALID", crcOk: true },
      { sector: 1, seq: 2, state: "INVALID", crcOk: true },
    ]);
    expect(state.slots.map((s: { version: string }) => s.version)).toEqual(["1.0.0", "2.0.0"]);
    expect(state.nextBoot.partition).toBe("ota_0");
  });
});

describe("ota-flash bad input: one clear line, non-zero exit, no stack trace", () => {
  it.each([
    ["a missing flash", ["info", "/nonexistent/flash.bin"], /no such flash file/],
    ["a missing image", ["image", "info", "/nonexistent/x.bin"], /no such image file/],
    ["an unknown command", ["frobnicate"], /unknown command/],
    ["a missing --version", ["image", "build", "/tmp/x.bin"], /--version is required/],
    ["an unknown option", ["boot", "x.bin", "--bogus"], /Unknown option/],
    ["a bad behaviour", ["image", "build", "/tmp/x.bin", "--version", "1", "--behaviour", "explode"], /--behaviour must be one of/],
  ])("%s", async (_, args, message) => {
    const r = await run(...args);
    expect(r.code).toBeGreaterThan(0);
    expect(r.err.split("\n")[0]).toMatch(message);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it("a non-image says so in one line, without a half-decoded header", async () => {
    writeFileSync(p("text.bin"), "hello, this is not firmware at all ".repeat(10));
    const r = await run("image", "info", p("text.bin"));
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err.trimEnd().split("\n")).toEqual([expect.stringMatching(/text\.bin is not an ESP app image \(magic: /)]);
  });

  it("--help on a subcommand prints that command's usage; bad usage is one line plus a hint", async () => {
    const help = await run("image", "info", "--help");
    expect(help.code).toBe(0);
    expect(help.out.trimEnd()).toBe("usage:\n  ota-flash image info FILE.bin [--json]");
    const bad = await run("boot", "--bogus", "x.bin");
    expect(bad.code).toBe(2);
    expect(bad.err.trimEnd().split("\n")).toEqual(["ota-flash: Unknown option '--bogus'", "  (see `ota-flash boot --help`)"]);
  });

  it("a corrupt partition table is reported, not thrown", async () => {
    expect((await run("create", p("c.bin"))).code).toBe(0);
    const bytes = readFileSync(p("c.bin"));
    bytes[PARTITION_TABLE_OFFSET + 40] ^= 0xff; // inside entry 1: the MD5 no longer matches
    writeFileSync(p("c.bin"), bytes);
    const r = await run("info", p("c.bin"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^ota-flash: .*md5/i);
  });

  it("installing a corrupt image leaves the boot choice untouched", async () => {
    await run("image", "build", p("good.bin"), "--version", "1.0.0");
    await run("image", "build", p("new.bin"), "--version", "1.1.0");
    await run("create", p("d.bin"), "--image", p("good.bin"));
    await run("boot", p("d.bin"));
    const img = readFileSync(p("new.bin"));
    img[img.length - 50] ^= 0x01;
    writeFileSync(p("bad.bin"), img);
    const r = await run("install", p("d.bin"), p("bad.bin"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/ESP_ERR_OTA_VALIDATE_FAILED/);
    const state = JSON.parse((await run("info", p("d.bin"), "--json")).out);
    expect(state.nextBoot.version).toBe("1.0.0");
  });

  it("confirm before any boot says what to do", async () => {
    await run("create", p("e.bin"));
    const r = await run("confirm", p("e.bin"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/run "ota-flash boot/);
  });
});

describe("the package bin", () => {
  it("runs as a separate process (what npx ota-flash executes)", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["bin/ota-flash.js", "image", "build", p("bin.bin"), "--version", "9.9.9"]);
    expect(stdout).toMatch(/version 9\.9\.9/);
    const bad = await promisify(execFile)(process.execPath, ["bin/ota-flash.js", "info", p("missing.bin")]).catch((e) => e);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("the README tour runs end to end", async () => {
    const lines: string[] = [];
    const code = await main(["tour", mkdtempSync(join(dir, "tour-"))], (l) => lines.push(l), (l) => lines.push(l));
    expect(code).toBe(0);
    expect(lines.at(-1)).toBe("Tour complete.");
    expect(lines.join("\n")).toMatch(/PENDING_VERIFY was|was PENDING_VERIFY: marking ABORTED/);
  });
});
