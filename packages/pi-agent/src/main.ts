#!/usr/bin/env node
import { setFlagsFromString } from "node:v8";

// At one report a second no function gets hot enough to pay for an optimizing compiler, while
// TurboFan's background compiles leave several MiB of malloc arenas resident for good. Set before
// any other module loads, so no compile job can exist yet.
setFlagsFromString("--no-opt");

const { runDaemon } = await import("./daemon.js");
await runDaemon(process.argv.slice(2));
