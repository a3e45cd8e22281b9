// The server's event stream (GET /api/v1/events, text/event-stream): a parser for the SSE wire format and a
// follower that reconnects after a drop, resuming with Last-Event-ID so no event is lost or repeated.
import type { ApiClient } from "./client";
import { ApiError } from "./client";
import { CliFailure } from "./usage";
import { queryString } from "../device/protocol/paths";

export const EVENTS_PATH = "/api/v1/events";

/** One event as the server sends it in `data:`. */
export interface OtaEvent {
  id: string | number;
  at: string;
  type: string;
  campaign_id: string | null;
  device_id: string | null;
  update_id: string | null;
  data: Record<string, unknown> | null;
}

export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

/** Incremental SSE parser (WHATWG rules): lines end in \n, \r\n or \r; a blank line ends a message. */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | null = null;

  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      // A lone \r at the end may be the first half of \r\n: wait for the next chunk.
      if (!m || (m[0] === "\r" && m.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      if (line === "") {
        if (this.data.length > 0) out.push({ id: this.id, event: this.event || "message", data: this.data.join("\n") });
        this.data = [];
        this.event = "";
        continue;
      }
      if (line.startsWith(":")) continue; // comment (keep-alive)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") this.data.push(value);
      else if (field === "event") this.event = value;
      else if (field === "id" && !value.includes("\0")) this.id = value;
    }
    return out;
  }
}

/** The server has no event stream (404 NOT_FOUND for the route): callers poll instead. */
export class NoEventStream extends Error {}

export interface FollowOptions {
  signal: AbortSignal;
  /** Consecutive failed reconnects before giving up (the failure is thrown). */
  maxRetries?: number;
  /** Called after each (re)connect, before its first event: state read now misses nothing the stream brings. */
  onOpen?: () => void | Promise<void>;
}

export interface EventFilter {
  campaign_id?: string;
  device_id?: string;
  type?: string;
  /** Replay from after this id (0: everything retained); default: only events from now on. */
  after?: number;
}

/** Events in batches (all that one network chunk brought), until the signal aborts. */
export async function* followEvents(client: ApiClient, filter: EventFilter, opts: FollowOptions): AsyncGenerator<OtaEvent[]> {
  const path = EVENTS_PATH + queryString({ ...filter });
  let lastId: string | null = null;
  let failures = 0;
  while (!opts.signal.aborted) {
    let res: Response;
    try {
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (lastId !== null) headers["last-event-id"] = lastId;
      res = await client.fetch(path, { headers, signal: opts.signal });
    } catch (e) {
      if (opts.signal.aborted) return;
      if (!(e instanceof CliFailure) || ++failures > (opts.maxRetries ?? 10)) throw e;
      await pause(Math.min(5000, 250 * 2 ** failures), opts.signal);
      continue;
    }
    if (!res.ok) {
      const body = await res.json().catch(() => null) as { error?: { code?: string; message?: string } } | null;
      if (res.status === 404 && body?.error?.code === "NOT_FOUND") throw new NoEventStream(`${client.conn.server} has no ${EVENTS_PATH}`);
      throw new ApiError(res.status, body?.error?.code ?? `HTTP_${res.status}`, body?.error?.message ?? res.statusText);
    }
    failures = 0;
    await opts.onOpen?.();
    const parser = new SseParser();
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        const batch: OtaEvent[] = [];
        for (const m of parser.push(decoder.decode(chunk, { stream: true }))) {
          if (m.id !== null) lastId = m.id;
          try {
            batch.push(JSON.parse(m.data) as OtaEvent);
          } catch {
            /* not an event document: skip it, the stream goes on */
          }
        }
        if (batch.length > 0) yield batch;
      }
    } catch {
      if (opts.signal.aborted) return; // otherwise the connection dropped mid-stream
    }
    // The server closed the stream or the connection dropped: reconnect from lastId.
    if (!opts.signal.aborted) await pause(250, opts.signal);
  }
}

/** Sleeps ms, or less when the signal aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
