#!/usr/bin/env node
// Runs the TypeScript OTA server through tsx's loader, so `npx ota-server` works without a build step.
import { register } from "tsx/esm/api";

register();
await import("../server-stub/cli.ts");
