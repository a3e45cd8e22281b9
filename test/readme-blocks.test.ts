// Every ```sh / ```bash block of README.md and server-stub/README.md, taken from the READMEs themselves
// (so they cannot drift), runs whole with `bash -e`, twice in a row, in a fresh temporary directory whose
// node_modules/.bin links to this repository's bins (so `npx ota-server` is ours, as in a clone).
// As root each block gets its own network namespace, so the default ports (8221, 1883, 8202) are free;
// otherwise (or with README_NO_NETNS=1) the ports are swapped for free ones (OTA_PORT, OTA_MQTT_PORT,
// OTA_AUTH_PORT and the text).
// A block preceded by `<!-- readme-test: skip REASON -->` is not run (installation, ESP32 hardware).
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "./support/free-port";

const root = new URL("../", import.meta.url).pathname;
const BINS = ["ota-server", "ota-sim", "ota-flash", "ota-demo", "ota"];
const SKIP = /<!--\s*readme-test:\s*skip\b([^>]*)-->\s*$/;

interface Block {
  file: string;
  line: number;
  script: string;
  skip: string | null;
}

function readmeBlocks(file: string): Block[] {
  const lines = readFileSync(join(root, file), "utf8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash)\s*$/.test(lines[i]!)) continue;
    const end = lines.indexOf("```", i + 1);
    const before = lines.slice(Math.max(0, i - 2), i).find((l) => SKIP.test(l));
    blocks.push({ file, line: i + 1, script: lines.slice(i + 1, end).join("\n"), skip: before ? SKIP.exec(before)![1]!.trim() || "marked" : null });
    i = end;
  }
  return blocks;
}

// README_BLOCK=README.md:55 runs only the block whose fence opens on that line.
const only = process.env.README_BLOCK;
const blocks = [...readmeBlocks("README.md"), ...readmeBlocks("server-stub/README.md")].filter((b) => !only || `${b.file}:${b.line}` === only);
const netnsUsable = !process.env.README_NO_NETNS && process.getuid?.() === 0 && spawnSync("ip", ["netns", "list"]).status === 0;
const made: string[] = [];

/** A scratch directory where `npx` finds this repository's bins, as it does in a clone. */
function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "readme-block-"));
  mkdirSync(join(dir, "node_modules/.bin"), { recursive: true });
  for (const b of BINS) symlinkSync(join(root, "bin", `${b}.js`), join(dir, "node_modules/.bin", b));
  made.push(dir);
  return dir;
}

interface Run {
  code: number | null;
  output: string;
  leftovers: number;
  ms: number;
}

async function runBlock(script: string, dir: string, netns: string | null, env: Record<string, string>): Promise<Run> {
  writeFileSync(join(dir, "block.sh"), script);
  const cmd = netns ? ["ip", "netns", "exec", netns, "bash", "-e", "block.sh"] : ["bash", "-e", "block.sh"];
  const t0 = Date.now();
  // Its own process group, so whatever the block leaves behind can be found and killed.
  const child = spawn(cmd[0]!, cmd.slice(1), { cwd: dir, detached: true, env: { ...process.env, ...env, npm_config_update_notifier: "false" } });
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 120_000);
  // "exit", not "close": a server the block left running would hold the pipes open.
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
  const ms = Date.now() - t0;
  // Children still on their way out (e.g. esbuild's service process, which quits once its parent is gone) get a
  // moment; whatever is still there after it was left running.
  const groupAlive = () => {
    try {
      process.kill(-child.pid!, 0);
      return true;
    } catch {
      return false; // group gone: nothing left
    }
  };
  const netnsPids = () => (netns ? spawnSync("ip", ["netns", "pids", netns], { encoding: "utf8" }).stdout.split("\n").filter(Boolean) : []);
  for (let waited = 0; waited < 3000 && (groupAlive() || netnsPids().length > 0); waited += 100) await new Promise((r) => setTimeout(r, 100));
  let leftovers = 0;
  if (groupAlive()) {
    leftovers++;
    process.kill(-child.pid!, "SIGKILL");
  }
  if (netns) {
    const pids = netnsPids();
    leftovers += pids.length;
    for (const pid of pids) spawnSync("kill", ["-9", pid]);
  }
  return { code, output, leftovers, ms };
}

describe("README blocks run as pasted, twice in a row", () => {
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });

  it("finds the blocks, and every skipped one says why", () => {
    if (!only) expect(blocks.filter((b) => !b.skip).length).toBeGreaterThanOrEqual(6);
    for (const b of blocks.filter((x) => x.skip)) expect(b.skip, `${b.file}:${b.line}`).not.toBe("marked");
  });

  it.concurrent.each(blocks.filter((b) => !b.skip).map((b) => [`${b.file}:${b.line}`, b] as const))("%s", async (_name, block) => {
    const dir = scratchDir();
    const ns = netnsUsable ? `readme-${process.pid}-${block.line}-${block.file.length}` : null;
    let script = block.script;
    const env: Record<string, string> = {};
    if (ns) {
      spawnSync("ip", ["netns", "add", ns]);
      spawnSync("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    } else {
      const [p, m, a] = [await freePort(), await freePort(), await freePort()];
      Object.assign(env, { OTA_PORT: String(p), OTA_MQTT_PORT: String(m), OTA_AUTH_PORT: String(a) });
      script = script.replaceAll("8221", String(p)).replaceAll("1883", String(m)).replaceAll("8202", String(a));
    }
    try {
      for (const attempt of [1, 2]) {
        const r = await runBlock(script, dir, ns, env);
        console.log(`${block.file}:${block.line} run ${attempt}: exit ${r.code} in ${(r.ms / 1000).toFixed(1)} s`);
        expect(r.code, `run ${attempt} of ${block.file}:${block.line}\n${r.output}`).toBe(0);
        expect(r.output, `run ${attempt}: a stack trace`).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);
        expect(r.leftovers, `run ${attempt} left processes running`).toBe(0);
      }
    } finally {
      if (ns) spawnSync("ip", ["netns", "del", ns]);
    }
  }, 300_000);
});
