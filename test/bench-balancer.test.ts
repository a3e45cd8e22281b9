// bench/balancer.ts: the scale bench's load balancer hands each new connection to the next backend in turn and pipes
// the bytes both ways, in process and as its own process.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnBalancer, startBalancer } from "../bench/balancer";

/** One request on a fresh connection (no keep-alive): which backend answered, and the body it echoed. */
async function once(port: number, body: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", body, headers: { connection: "close" } });
  return res.text();
}

describe("round-robin TCP balancer", () => {
  const backends: http.Server[] = [];
  const ports: number[] = [];
  beforeAll(async () => {
    for (const name of ["a", "b"]) {
      const s = http.createServer((req, res) => {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => res.end(`${name}:${body}`));
      });
      await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
      backends.push(s);
      ports.push((s.address() as AddressInfo).port);
    }
  });
  afterAll(async () => {
    for (const s of backends) await new Promise((r) => s.close(r));
  });

  it("gives connections to the backends in turn, each request's body through and its answer back", async () => {
    const b = await startBalancer(ports);
    try {
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await once(b.port, `req${i}`));
      expect(answers).toEqual(["a:req0", "b:req1", "a:req2", "b:req3"]);
      expect(b.counts).toEqual([2, 2]);
    } finally {
      await b.close();
    }
  });

  it("runs as its own process and reports the connections per backend when stopped", async () => {
    const b = await spawnBalancer(ports);
    try {
      const answers = [await once(b.port, "x"), await once(b.port, "y"), await once(b.port, "z")];
      expect(answers).toEqual(["a:x", "b:y", "a:z"]);
    } finally {
      expect(await b.stop()).toEqual([2, 1]); // stopped whatever happened, so no balancer outlives a failure
    }
  });

  it("refuses to balance over no backend", async () => {
    await expect(startBalancer([])).rejects.toThrow(/at least one backend/);
  });
});
