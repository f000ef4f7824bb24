/**
 * The whole system under simulation (test/sim/scenario.ts): servers, storage nodes and users'
 * machines under a seed's faults; safety checked after every step of the run, liveness once
 * the faults stop. A failing seed prints the command that replays it.
 */
import { describe, expect, it } from "vitest";
import { seeds } from "./cluster.ts";
import { runScenario } from "./scenario.ts";
import { withSystem } from "./system.ts";

const file = "test/sim/whole-system.test.ts";

describe.each(seeds(5, 1_001))("the whole system under faults, seed %i", (seed) => {
  it("keeps every promise: files, replicas, exact views, state, secrets", async () => {
    await withSystem(seed, file, async (system) => {
      const ledger = await runScenario(system, { rounds: 40 });
      // The run did something: files stored and given back.
      expect(ledger.stored.size + ledger.failures).toBeGreaterThan(0);
    });
  }, 120_000);
});
