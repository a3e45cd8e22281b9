#!/usr/bin/env node
// `npm start`: the fleet demo (server stub, simulated fleet, canary and auto-rollback), through tsx's loader.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../demo/demo.ts");
process.exitCode = await main(process.argv.slice(2));
