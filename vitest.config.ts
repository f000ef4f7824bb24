import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Integration tests start real nats-servers and child processes; give them room, not sleeps.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // A file spends most of its time waiting (on brokers, heartbeats, grace periods), so files
    // run one per core and never fewer than two at once: on 2 cores the suite took 382 s this
    // way against 553-614 s one file at a time (vitest's default there), with nothing flaky.
    maxWorkers: Math.max(2, availableParallelism()),
  },
});
