// Graceful shutdown of the HTTP listener: stop accepting connections, let in-flight requests (a device's firmware
// download above all) finish, and cut whatever is still running at the deadline.
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { logEvent } from "./log";

/** `begin` is called first (readiness turns 503); resolves once every connection has closed. */
export async function drain(app: FastifyInstance, log: Logger, deadlineMs: number, begin: () => void): Promise<void> {
  begin();
  const open = await new Promise<number>((resolve) => app.server.getConnections((err, n) => resolve(err ? 0 : n)));
  log.debug({ open_connections: open, deadline_ms: deadlineMs }, "http_draining");
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
  // A line worth reading only when the drain made the shutdown wait (otherwise the log ends with ota_server_stopping).
  const ms = Date.now() - started;
  if (cut || ms >= 100) logEvent(log, "http_drained", { ms, cut });
  else log.debug({ ms }, "http_drained");
}
