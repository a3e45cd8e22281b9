#!/usr/bin/env node
// The server's tests again on PostgreSQL (OTA_TEST_DB=pg): vitest's globalSetup starts a throwaway cluster, or uses
// $OTA_TEST_PG_URL, and every server a test starts gets its own database. Without PostgreSQL this prints one line
// and exits 0, except under CI=true, which never skips. `node scripts/test-pg.mjs FILE…` runs only those files.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { tsImport } from "tsx/esm/api";

// Every file whose subject is the server. Left out: the device, host-sim and XS suites (no server, or the agent is
// the subject and the server a fixed point), the README blocks and the demo (they document the SQLite default).
const SERVER_FILES = [
  "test/server/",
  "test/faults/server-",
  "test/cli.test.ts",
  "test/cdn.test.ts",
  "test/dashboard.test.ts",
  "test/dashboard-unit.test.ts",
  "test/delta-e2e.test.ts",
  "test/agent-e2e.test.ts",
  "test/fleet.test.ts",
  "test/fleet-targeting.test.ts",
  "test/health-report.test.ts",
  "test/mtls.test.ts",
  "test/protocol-limits.test.ts",
  "test/protocol-paths.test.ts",
  "test/release-keys.test.ts",
  "test/signature-algs-e2e.test.ts",
];

const { pgMissing } = await tsImport("../test/support/pg-cluster.ts", import.meta.url);
const missing = process.env.OTA_TEST_DB === "sqlite" ? "OTA_TEST_DB=sqlite" : pgMissing();
if (missing) {
  if (process.env.CI === "true") {
    console.error(`PostgreSQL suite not run: ${missing}; CI=true runs every suite`);
    process.exit(1);
  }
  console.log(`PostgreSQL suite skipped: ${missing}`);
  process.exit(0);
}
const files = process.argv.length > 2 ? process.argv.slice(2) : SERVER_FILES;
const vitest = join(dirname(createRequire(import.meta.url).resolve("vitest/package.json")), "vitest.mjs");
const run = spawnSync(process.execPath, [vitest, "run", ...files], { stdio: "inherit", env: { ...process.env, OTA_TEST_DB: "pg" } });
process.exit(run.status ?? 1);
