// vitest globalSetup: with OTA_TEST_DB=pg, one PostgreSQL for the whole run (its URL goes to the test files through
// provide/inject); each server a test starts gets its own database on it (test/support/test-database.ts).
import type { TestProject } from "vitest/node";
import { pgMissing, startPgCluster } from "./pg-cluster";

declare module "vitest" {
  export interface ProvidedContext {
    /** A URL on the run's PostgreSQL server (any database on it), or null outside OTA_TEST_DB=pg. */
    otaTestPgUrl: string | null;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  project.provide("otaTestPgUrl", null);
  if (process.env.OTA_TEST_DB !== "pg") return undefined;
  const missing = pgMissing();
  if (missing) throw new Error(`OTA_TEST_DB=pg: ${missing}`);
  const server = await startPgCluster();
  project.provide("otaTestPgUrl", server.url("postgres"));
  return () => server.stop();
}
