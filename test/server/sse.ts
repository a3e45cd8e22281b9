// A real Server-Sent Events client for tests: node:http, parses `id:`/`event:`/`data:` frames and comments.
import http from "node:http";
import type { Harness } from "./harness";

export interface SseFrame {
  id: number;
  event: string;
  data: any;
}

export interface SseStream {
  status: number;
  frames: SseFrame[];
  comments: string[];
  /** Resolves once `pred` holds for the frames received so far (or rejects after ms). */
  until(pred: (frames: SseFrame[]) => boolean, ms?: number): Promise<SseFrame[]>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  /** Stops reading (the server's socket buffer fills up) until resume(). */
  pause(): void;
  resume(): void;
  close(): void;
}

export function openSse(h: Harness, path: string, opts: { token?: string; apiKey?: string; lastEventId?: number } = {}): Promise<SseStream> {
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.apiKey) headers["x-api-key"] = opts.apiKey;
  if (opts.lastEventId !== undefined) headers["last-event-id"] = String(opts.lastEventId);
  return new Promise((resolve, reject) => {
    const req = http.get(h.server.url + path, { headers }, (res) => {
      const frames: SseFrame[] = [];
      const comments: string[] = [];
      const waiters: Array<() => void> = [];
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buf += chunk;
        for (let end = buf.indexOf("\n\n"); end >= 0; end = buf.indexOf("\n\n")) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const f: Partial<SseFrame> = {};
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) comments.push(line.slice(1).trim());
            else if (line.startsWith("id: ")) f.id = Number(line.slice(4));
            else if (line.startsWith("event: ")) f.event = line.slice(7);
            else if (line.startsWith("data: ")) f.data = JSON.parse(line.slice(6));
          }
          if (f.id !== undefined) frames.push(f as SseFrame);
        }
        for (const w of waiters.splice(0)) w();
      });
      const stream: SseStream = {
        status: res.statusCode ?? 0,
        frames,
        comments,
        until(pred, ms = 5000) {
          return new Promise((ok, fail) => {
            const timer = setTimeout(() => fail(new Error(`SSE condition not met in ${ms} ms; got ${frames.map((f) => `${f.id}:${f.event}`).join(" ")}`)), ms);
            const check = () => {
              if (pred(frames)) {
                clearTimeout(timer);
                ok(frames);
              } else waiters.push(check);
            };
            check();
          });
        },
        ended: new Promise<void>((r) => res.on("end", () => r()).on("close", () => r())),
        pause: () => res.pause(),
        resume: () => res.resume(),
        close: () => req.destroy(),
      };
      resolve(stream);
    });
    req.on("error", (e) => {
      if ((e as NodeJS.ErrnoException).code !== "ECONNRESET") reject(e);
    });
  });
}
