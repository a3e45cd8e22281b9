// fetch() for an operator's tools (fleet, demo, tests) against a server whose certificate chains to a private CA:
// Node 20's fetch cannot be given a CA, so https goes through node:https with that CA, and the answer is a real Response.
import https from "node:https";

export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

/** A fetch that trusts `cas` (PEM) for https URLs, the global fetch otherwise (http, or no CA given). */
export function pinnedFetch(cas: string[] | null | undefined, agent?: https.Agent): FetchLike {
  if (!cas || cas.length === 0) return (url, init) => fetch(url, init);
  return async (url, init = {}) => {
    if (!url.startsWith("https:")) return fetch(url, init);
    const headers = new Headers(init.headers);
    let body: Buffer | undefined;
    if (init.body !== undefined && init.body !== null) {
      // FormData, strings, buffers: let a Request encode them (and pick the multipart boundary).
      const encoded = new Request(url, { method: init.method ?? "POST", body: init.body, headers });
      body = Buffer.from(await encoded.arrayBuffer());
      const type = encoded.headers.get("content-type");
      if (type) headers.set("content-type", type);
      headers.set("content-length", String(body.length));
    }
    return new Promise<Response>((resolve, reject) => {
      const req = https.request(url, { method: init.method ?? "GET", headers: Object.fromEntries(headers), ca: cas, ...(agent ? { agent } : {}), ...(init.signal ? { signal: init.signal } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(", ") : v);
          const nullBody = status === 204 || status === 205 || status === 304 || init.method === "HEAD";
          resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, headers: out }));
        });
      });
      req.on("error", reject);
      req.end(body);
    });
  };
}
