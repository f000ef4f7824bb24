// A worker's entry on both runtimes: on Node it registers tsx so the TypeScript worker loads
// as it is; Deno runs TypeScript natively. The worker module to load comes in workerData.
import { workerData } from "node:worker_threads";

if (!("Deno" in globalThis)) {
  const { register } = await import("tsx/esm/api");
  register();
}
await import(workerData.module);
