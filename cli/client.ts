// The REST client: every request carries the credential; every refusal becomes an ApiError with the
// server's {"error": {"code", "message"}}, and an unreachable server a CliFailure that names it.
import type { Connection } from "./config";
import { CliFailure } from "./usage";

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export class ApiClient {
  constructor(readonly conn: Connection) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const c = this.conn.credential;
    return { ...extra, ...("api_key" in c ? { "x-api-key": c.api_key } : { authorization: `Bearer ${c.token}` }) };
  }

  /** A raw request (for streams); network failures become a CliFailure. */
  async fetch(path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
    try {
      return await fetch(this.conn.server + path, { ...init, headers: this.headers(init.headers) });
    } catch (e) {
      if ((e as Error).name === "AbortError") throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new CliFailure(`cannot reach ${this.conn.server}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
  }

  async request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit & { headers: Record<string, string> } = { method, headers: {} };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await this.fetch(path, init);
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON: reported below when it is an error */
    }
    if (!res.ok) {
      const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? (text.slice(0, 200) || res.statusText));
    }
    return parsed as T;
  }

  get = <T = any>(path: string) => this.request<T>("GET", path);
  post = <T = any>(path: string, body: unknown = {}) => this.request<T>("POST", path, body);
}
