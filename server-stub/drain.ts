// Graceful shutdown of the HTTP listener: stop accepting connections, let in-flight requests (a device's firmware
// download above all) finish, and cut whatever is still running at the deadline.
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { logEvent } from "./log";

/** `begin` is called first (readiness turns 503); resolves once every connection has closed. */
export async function drain(app: FastifyInstance, log: Logger, deadlineMs: number, begin: () => void): Promise<void> {
  begin();
  const open = await new Promise<number>((resolve) => app.server.getConnections((err, n) => resolve(err ? 0 : n)));
  logEvent(log, "http_draining", { open_connections: open, deadline_ms: deadlineMs });
  const started = Date.now();
  let cut = false;
  const timer = setTimeout(() => {
    cut = true;
    logEvent(log, "http_drain_deadline", { deadline_ms: deadlineMs }, "warn");
    app.server.closeAllConnections(); // the requests still running end here (the device resumes with Range later)
  }, deadlineMs);
  try {
    // fastify closes idle keep-alive connections, answers 503 to requests arriving on busy ones, and waits for the rest.
    await app.close();
  } finally {
    clearTimeout(timer);
  }
  logEvent(log, "http_drained", { ms: Date.now() - started, cut });
}
