// One Server-Sent Events client: catches up from the database after its cursor, then follows the hub.
// A client that cannot keep up (the socket buffer is full) stops taking live rows and catches up again
// from the database once the socket drains, so memory stays bounded and no event is skipped.
import type { ServerResponse } from "node:http";
import type { Db } from "../db";
import type { EventHub } from "./hub";
import { eventsAfter, eventToApi, matches, type EventFilter, type EventRow } from "./store";

const PAGE = 500;

export interface SseOptions {
  keepAliveMs: number;
}

export class SseClient {
  private catchingUp = false;
  private closed = false;
  private unsubscribe: () => void = () => {};
  private keepAlive: NodeJS.Timeout | null = null;

  constructor(private db: Db, private res: ServerResponse, private filter: EventFilter, private cursor: number) {}

  start(hub: EventHub, opts: SseOptions): void {
    this.res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no", // nginx: do not buffer the stream
    });
    this.res.write(": connected\n\n");
    this.unsubscribe = hub.subscribe((rows) => this.live(rows));
    this.keepAlive = setInterval(() => this.res.write(": keep-alive\n\n"), opts.keepAliveMs);
    this.res.on("close", () => this.close());
    void this.catchUp();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    if (this.keepAlive) clearInterval(this.keepAlive);
    if (!this.res.writableEnded) this.res.end();
  }

  /** Sends one event; false when the socket buffer is full. */
  private send(r: EventRow): boolean {
    this.cursor = r.id;
    return this.res.write(`id: ${r.id}\nevent: ${r.type}\ndata: ${JSON.stringify(eventToApi(r))}\n\n`);
  }

  private live(rows: readonly EventRow[]): void {
    if (this.catchingUp || this.closed) return; // the catch-up reads these from the database
    for (const r of rows) {
      if (r.id <= this.cursor || !matches(this.filter, r)) continue;
      if (!this.send(r)) return void this.catchUp();
    }
  }

  private async catchUp(): Promise<void> {
    this.catchingUp = true;
    try {
      while (!this.closed) {
        if (this.res.writableNeedDrain) await new Promise((resolve) => this.res.once("drain", resolve));
        if (this.closed) return;
        const rows = eventsAfter(this.db, this.filter, this.cursor, PAGE);
        for (const r of rows) this.send(r);
        // Synchronous with the query: nothing can commit between it and going live.
        if (rows.length < PAGE && !this.res.writableNeedDrain) return;
      }
    } finally {
      this.catchingUp = false;
    }
  }
}
