// The live feed: one connection to the server's event stream (GET /api/v1/events, SSE) shared by every view.
// EventSource cannot send an Authorization header, so the stream is read with fetch() and parsed here; after a
// drop it reconnects with Last-Event-ID, so no event is lost in between.
import { authHeaders, paths } from "./api.js";

const RETRY_MAX_MS = 10_000;
const KEEP = 300; // events kept for the event log

const listeners = new Set();
const statusListeners = new Set();
export const recent = [];
let lastId = null;
let controller = null;
let mode = "off";

/** Calls fn(event) for every event; returns the unsubscribe function. */
export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Calls fn(mode) now and whenever the feed changes between "live", "reconnecting" and "off". */
export function onStatus(fn) {
  statusListeners.add(fn);
  fn(mode);
  return () => statusListeners.delete(fn);
}

function setMode(m) {
  mode = m;
  for (const fn of statusListeners) fn(m);
}

function emit(event) {
  recent.unshift(event);
  recent.length = Math.min(recent.length, KEEP);
  for (const fn of [...listeners]) {
    try {
      fn(event);
    } catch (e) {
      console.error(e);
    }
  }
}

export function stop() {
  controller?.abort();
  controller = null;
  setMode("off");
}

export function start() {
  stop();
  const own = (controller = new AbortController());
  void run(own.signal);
}

async function run(signal) {
  let delay = 500;
  while (!signal.aborted) {
    try {
      const headers = { ...authHeaders(), Accept: "text/event-stream", ...(lastId ? { "Last-Event-ID": lastId } : {}) };
      const res = await fetch(paths.events(), { headers, signal, cache: "no-store" });
      if (!res.ok || !res.body) throw new Error(`event stream: HTTP ${res.status}`);
      setMode("live");
      delay = 500;
      await readStream(res.body, signal);
    } catch (e) {
      if (signal.aborted) return;
      console.warn(e);
    }
    setMode("reconnecting");
    await sleep(delay, signal);
    delay = Math.min(delay * 2, RETRY_MAX_MS);
  }
}

/** Server-sent events framing: "field: value" lines, a blank line ends an event; only `data` events reach listeners. */
async function readStream(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener("abort", () => void reader.cancel().catch(() => {}), { once: true });
  let buffer = "";
  let frame = { id: null, event: null, data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") {
        dispatch(frame);
        frame = { id: null, event: null, data: [] };
        continue;
      }
      if (line.startsWith(":")) continue; // comment / keep-alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") frame.id = val;
      else if (field === "event") frame.event = val;
      else if (field === "data") frame.data.push(val);
    }
  }
}

function dispatch(frame) {
  if (frame.id !== null) lastId = frame.id;
  if (frame.data.length === 0) return;
  try {
    const event = JSON.parse(frame.data.join("\n"));
    emit({ ...event, type: event.type ?? frame.event ?? "message" });
  } catch {
    console.warn("unreadable event", frame);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });
}

/**
 * Runs load() now and again after matching events, at most once per `gapMs`: a burst of events from a whole
 * stage becomes one refresh. `everyMs` also refreshes on a timer, for what no event announces (last contact).
 * Returns the cleanup for the view.
 */
export function refreshOn(matches, load, { gapMs = 400, everyMs = 0 } = {}) {
  let timer = null;
  let running = false;
  let again = false;
  const run = async () => {
    timer = null;
    if (running) return void (again = true);
    running = true;
    try {
      await load();
    } catch (e) {
      console.warn(e);
    } finally {
      running = false;
      if (again) (again = false), schedule();
    }
  };
  const schedule = () => void (timer ??= setTimeout(run, gapMs));
  const off = onEvent((e) => matches(e) && schedule());
  const ticker = everyMs ? setInterval(schedule, everyMs) : null;
  void run();
  const stop = () => {
    off();
    clearTimeout(timer);
    clearInterval(ticker);
  };
  stop.refresh = schedule; // for changes the stream does not announce (the view's own actions)
  return stop;
}
