#!/usr/bin/env node
// Runs the TypeScript release CLI through tsx's loader, so `npx ota` works without a build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/main.ts");
const { processIo } = await import("../cli/io.ts");
const interrupted = new AbortController();
process.once("SIGINT", () => interrupted.abort());
process.exitCode = await main(process.argv.slice(2), processIo(interrupted.signal));
