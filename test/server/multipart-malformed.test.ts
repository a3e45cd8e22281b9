// A multipart body that ends before its closing boundary is bad input (400), not a server error.
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Harness } from "./harness";
import { startHarness } from "./harness";

let h: Harness;
beforeAll(async () => (h = await startHarness()));
afterAll(async () => h?.close());

it("truncated multipart upload → 400 INVALID_UPLOAD, and the server keeps serving", async () => {
  const b = "----trunc";
  const res = await fetch(h.server.url + "/api/v1/firmware", {
    method: "POST",
    headers: { authorization: `Bearer ${h.admin}`, "content-type": `multipart/form-data; boundary=${b}` },
    body: `--${b}\r\nContent-Disposition: form-data; name="file"\r\n\r\nunterminated`,
  });
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe("INVALID_UPLOAD");
  expect((await fetch(h.server.url + "/health")).status).toBe(200);
});
