/**
 * The whole server under simulation: three `startServer`s on the simulated network and log.
 * A leader is elected and recorded, every server is recorded as joined by the leader's own
 * membership duty (a round of the rounds machine on simulated time), a crashed
 * leader is succeeded and recorded as gone, and every server's live state equals the state
 * folded from sequence 1.
 */
import { describe, expect, it } from "vitest";
import { clusterProjection, type ClusterState, fold } from "../../projections/mod.ts";
import { seeds } from "./cluster.ts";
import { calmNetwork, randomFaults } from "./network.ts";
import { SimSystem, withSystem } from "./system.ts";

const file = "test/sim/system.test.ts";

function folded(system: SimSystem): ClusterState {
  return fold(clusterProjection, system.log.records.flatMap((record) => (record.ok ? [record.event] : [])));
}

async function until(system: SimSystem, what: string, boundMs: number, done: () => boolean): Promise<void> {
  for (let elapsed = 0; elapsed <= boundMs; elapsed += 50) {
    if (done()) return;
    await system.run(50);
  }
  throw new Error(`${what}: not within ${boundMs} ms of simulated time`);
}

describe.each(seeds(20))("the whole server, seed %i", (seed) => {
  it("elects and records a leader, records members by the leader's duty, and replaces a crashed leader", async () => {
    await withSystem(seed, file, async (system) => {
      for (const node of ["s1", "s2", "s3"]) system.startServer(node);
      await until(
        system,
        "three live servers",
        5_000,
        () =>
          [...system.servers.values()].every((server) =>
            server.actor.getSnapshot().matches({ running: { projections: "live" } })
          ),
      );
      await until(system, "a recorded leader", 10_000, () => folded(system).elected?.node === "s3");
      expect(Object.keys(folded(system).nodes).sort()).toEqual(["s1", "s2", "s3"]);

      system.crash("s3");
      await until(
        system,
        "s3 recorded as gone by the next leader's membership round",
        20_000,
        () => folded(system).nodes.s3?.status === "left" && folded(system).elected?.node === "s2",
      );
      const gone = system.log.records.findLast((record) => record.ok && record.event.type === "NodeLeft");
      expect(gone?.ok && gone.event.data).toMatchObject({ node: "s3", reason: "timeout" });
      expect(gone?.ok && gone.event.by).toBe("s2");

      // Every live server's own projection has caught up with what the log folds to.
      await system.run(1_000);
      for (const node of ["s1", "s2"]) {
        expect(system.servers.get(node)!.projectors.get("cluster")!.state, node).toEqual(folded(system));
      }
    });
  }, 30_000);
});

describe.each(seeds(20, 101))("the whole server under faults, seed %i", (seed) => {
  it("keeps one leader per term through drops, duplicates, crashes, restarts and partitions, then agrees", async () => {
    const nodes = ["s1", "s2", "s3"];
    await withSystem(seed, file, async (system) => {
      for (const node of nodes) system.startServer(node);
      system.network.faults = randomFaults(system.random);
      for (let round = 0; round < 8; round++) {
        const node = system.random.pick(nodes);
        const roll = system.random.next();
        if (roll < 0.3 && system.servers.has(node)) system.crash(node);
        else if (roll < 0.6 && !system.servers.has(node)) system.startServer(node);
        else if (roll < 0.75) system.network.partition([nodes.slice(0, 1), nodes.slice(1)]);
        else system.network.heal();
        await system.run(system.random.between(200, 2_000));
      }
      // Faults stop: the network heals and every server comes back; the cluster must agree.
      system.network.heal();
      system.network.faults = { ...calmNetwork };
      for (const node of nodes) if (!system.servers.has(node)) system.startServer(node);
      await until(system, "one agreed, recorded leader with every server joined", 30_000, () => {
        const log = folded(system);
        const leaders = system.leaders();
        return leaders.length === 1 && log.elected?.node === leaders[0]!.node &&
          log.elected.term === leaders[0]!.term &&
          nodes.every((node) => log.nodes[node]?.status === "joined");
      });
      await system.run(1_000);
      for (const node of nodes) {
        expect(system.servers.get(node)!.projectors.get("cluster")!.state, node).toEqual(folded(system));
      }
    });
  }, 60_000);
});
