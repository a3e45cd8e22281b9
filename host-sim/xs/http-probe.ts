// Runs in XS: one request through whichever embedded:network/http/client the bundle carries (our fake, or
// Moddable's httpclient.js for the conformance test), over the TCP and net fakes, recording every callback and
// what each read returned. Two clients that behave alike leave the same trace.
import HTTPClient from "embedded:network/http/client";
import TCP from "embedded:io/socket/tcp";
import Timer from "timer";
import { NetResolver } from "../../device/esp32/net-resolver";

export interface ProbeArgs {
  host: string;
  port: number;
  path: string;
  /** Bytes asked of each read: a number (read(count)), or "buffer:N" (read into an N-byte buffer). */
  reads: (number | string)[];
}

export function httpProbe({ host, port, path, reads }: ProbeArgs): Promise<unknown[]> {
  return new Promise((resolve) => {
    const trace: unknown[] = [];
    let next = 0;
    // Bytes left unread are not offered again until more arrive: a reader that leaves some can stall for good.
    const stalled = Timer.set(() => (trace.push(["stalled"]), client.close(), resolve(trace)), 1500);
    const client = new HTTPClient({
      host,
      port,
      dns: { io: NetResolver },
      socket: { io: TCP },
      onError: (e?: unknown) => trace.push(["client.onError", e === undefined ? "undefined" : "error"]),
    } as never);
    client.request({
      method: "GET",
      path,
      headers: new Map([["x-probe", "1"]]),
      onHeaders(status: number, headers: Map<string, string>) {
        trace.push(["onHeaders", status, [...headers].filter(([k]) => k !== "date").sort()]);
      },
      onReadable(count: number) {
        trace.push(["onReadable", count]);
        const ask = reads[next++ % reads.length]!;
        if (typeof ask === "number") {
          const got = (this as { read(n: number): ArrayBuffer | undefined }).read(ask);
          trace.push(["read", ask, got ? String.fromArrayBuffer(got) : got]);
        } else {
          const buffer = new Uint8Array(Number(ask.slice(7)));
          const n = (this as { read(b: Uint8Array): number | undefined }).read(buffer);
          trace.push(["read", ask, n, String.fromArrayBuffer(buffer.buffer.slice(0, typeof n === "number" ? n : 0) as ArrayBuffer)]);
        }
      },
      onDone(error: unknown) {
        trace.push(["onDone", error ? "error" : null]);
        Timer.clear(stalled);
        // Let the client finish what it does after onDone (its onError, its close) before answering.
        Promise.resolve().then(() => {
          client.close();
          resolve(trace);
        });
      },
    } as never);
  });
}
