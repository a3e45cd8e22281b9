// ota-sim's command line: help per command, one-line errors with a hint, and the fleet's live line.
import { describe, expect, it } from "vitest";
import { main } from "../host-sim/cli/ota-sim";
import { campaignPart, liveLine, type CampaignSummary } from "../host-sim/fleet/live-line";

async function run(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, (l) => out.push(l), (l) => err.push(l));
  return { code, out: out.join("\n"), err };
}

describe("ota-sim CLI", () => {
  it("--help on each command prints that command's usage", async () => {
    for (const cmd of ["fleet", "device"]) {
      const r = await run(cmd, "--help");
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`^usage:\\n  ota-sim ${cmd} `));
      expect(r.out).not.toMatch(cmd === "fleet" ? /ota-sim device/ : /ota-sim fleet/);
    }
    expect((await run("--help")).out).not.toMatch(/docs\//); // no pointer to a document that does not exist
  });

  it("bad usage is one line plus a hint, exit 2", async () => {
    expect(await run("device", "--id", "x")).toMatchObject({ code: 2, err: ["ota-sim: --flash is required", "  (see `ota-sim device --help`)"] });
    expect(await run("fleet", "--bogus")).toMatchObject({ code: 2, err: ["ota-sim: Unknown option '--bogus'", "  (see `ota-sim fleet --help`)"] });
    expect(await run("frob")).toMatchObject({ code: 2, err: ['ota-sim: unknown command "frob"', "  (see `ota-sim --help`)"] });
  });

  it("a device needs an API key or a client certificate and key, the certificate only over TLS", async () => {
    const base = ["device", "--id", "x", "--flash", "x.bin", "--server", "https://localhost:8221"];
    expect((await run(...base)).err[0]).toBe("ota-sim: --api-key is required (or --client-cert and --client-key)");
    expect((await run(...base, "--client-cert", "x.pem")).err[0]).toBe("ota-sim: --client-cert and --client-key go together");
    expect((await run(...base, "--client-cert", "x.pem", "--client-key", "x-key.pem")).err[0]).toMatch(/give the server's CA with --cacert$/);
  });
});

describe("fleet live line", () => {
  const campaign: CampaignSummary = {
    campaign_id: "camp_1", name: "c", status: "paused", current_stage: 1, stages: [{}, {}, {}], total_devices: 20,
    completed_devices: 5, failed_devices: 2, rolled_back_devices: 3, in_progress_devices: 0, pause_reason: "stage batch 2 failure rate 50.0% > 20%",
  };

  it("shows failures, rollbacks, the stage and why a campaign paused", () => {
    expect(campaignPart(campaign)).toBe("campaign camp_1 paused (stage batch 2 failure rate 50.0% > 20%) stage 2/3: 5/20 done, 0 updating, 2 failed, 3 rolled back");
    expect(liveLine({ "1.0.0": 15, "1.1.0": 5 }, { idle: 20 }, 1.25, campaign)).toMatch(/^versions 1\.0\.0=15 1\.1\.0=5 \| agents idle=20 \| 1\.3 MiB \| campaign camp_1 paused/);
  });

  it("says when there is no campaign yet or the server does not answer", () => {
    expect(liveLine({}, {}, 0, null)).toMatch(/campaign none yet$/);
    expect(liveLine({}, {}, 0, "unknown")).toMatch(/server not answering\)$/);
  });
});
