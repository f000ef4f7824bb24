#!/usr/bin/env node
// The npm `veil` bin: registers tsx so Node runs the TypeScript CLI as it is (Deno needs no shim).
import { register } from "tsx/esm/api";

register();
await import("./veil.ts");
