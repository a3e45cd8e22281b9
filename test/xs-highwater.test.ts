// Memory judged by high-water: an update on XS grows the machine's arenas above the idle agent by at most 32 KiB
// (slots counted at 16 bytes as on the ESP32), the same for 1 MiB as for 4 MiB (bench/xs-highwater.ts measures).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { updateHighwater } from "../bench/xs-highwater";
import type { World } from "./helpers/e2e";
import { startWorld } from "./helpers/e2e";

const MiB = 1024 * 1024;

describe("XS high-water of an update", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld("xs", { tls: false });
  });
  afterAll(async () => w?.close());

  it("stays within 32 KiB above the idle agent, flat from 1 MiB to 4 MiB", async () => {
    const small = await updateHighwater(w, MiB);
    const large = await updateHighwater(w, 4 * MiB);
    expect(small.bytes).toBeGreaterThan(0); // the meter moves: an update holds something
    expect(small.bytes).toBeLessThanOrEqual(32 * 1024);
    expect(Math.abs(large.bytes - small.bytes)).toBeLessThanOrEqual(2048);
  }, 120_000);
});
