/** A worker for testing pools: it echoes, takes its time, or dies, on request. */
import process from "node:process";
import { serveOperations } from "../../infra/workers/serve.ts";

serveOperations({
  echo: (input: unknown) => input,
  // Simulated work that takes a while, so tests can fill the pool; not a test's synchronisation.
  work: (input: { ms: number }) => new Promise((resolve) => setTimeout(() => resolve(input.ms), input.ms)),
  die: () => process.exit(3),
});
