#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader, so no build step or global install is needed.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../release/ota-sign.ts");
process.exitCode = await main(process.argv.slice(2));
