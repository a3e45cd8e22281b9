import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    pool: "forks",
    // Starts PostgreSQL only under OTA_TEST_DB=pg (scripts/test-pg.mjs); a no-op otherwise.
    globalSetup: ["test/support/pg-global-setup.ts"],
  },
});
