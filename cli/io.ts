// What a command gets: its parsed flags, the terminal, and a client built on first use (so --help and
// usage errors never need a server).
import type { Parsed } from "./args";
import { ApiClient } from "./client";
import { resolveConnection } from "./config";

export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Raw text to stdout (cursor movements of the live progress display). */
  write(text: string): void;
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C: watchers and followers stop reading and return. */
  signal: AbortSignal;
}

export function processIo(signal: AbortSignal): Io {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    write: (text) => process.stdout.write(text),
    isTTY: process.stdout.isTTY === true,
    env: process.env,
    signal,
  };
}

export interface Command extends Parsed {
  io: Io;
  json: boolean;
  client(): ApiClient;
}

export function commandOf(parsed: Parsed, io: Io): Command {
  let client: ApiClient | undefined;
  return {
    ...parsed,
    io,
    json: parsed.values.json === true,
    client: () => (client ??= new ApiClient(resolveConnection(parsed.values as Record<string, string>, io.env))),
  };
}

/** --json: the document as is; otherwise the human lines. */
export function show(cmd: Command, doc: unknown, human: () => string[]): void {
  if (cmd.json) cmd.io.out(JSON.stringify(doc, null, 2));
  else for (const line of human()) cmd.io.out(line);
}
