/**
 * Deterministic simulation of the Bully election: real server machines and effects on a
 * simulated network and log. Safety (at most one leader per term; the log's terms go
 * 1, 2, 3, ...) is checked after every 10 ms step; liveness (exactly one agreed leader)
 * within a bound once faults stop. A failure names its seed and how to replay it.
 */
import { describe, expect, it } from "vitest";
import { encodeMessage } from "../../events/mod.ts";
import { calmNetwork, randomFaults } from "./network.ts";
import { seeds, type SimCluster, withSeed } from "./cluster.ts";

const file = "test/sim/election.test.ts";
const servers = (count: number) => Array.from({ length: count }, (_, index) => `server-${index + 1}`);
/** Detection (800 ms) + answers (200 ms) + claim + coordinator, with room for retries. */
const settleBoundMs = 5_000;

async function startAll(cluster: SimCluster, nodes: string[]) {
  for (const node of nodes) cluster.start(node);
  return await cluster.settle(settleBoundMs);
}

/**
 * server-2 leads; server-3 returns cut off from the others and wins a newer term in the log
 * that server-1 and server-2 never hear of.
 */
async function supersedeUnheard(cluster: SimCluster) {
  await startAll(cluster, servers(3));
  cluster.crash("server-3");
  expect((await cluster.settle(settleBoundMs)).node).toBe("server-2");
  cluster.network.partition([["server-1", "server-2"], ["server-3"]]);
  cluster.start("server-3");
  await cluster.run(1_000);
  expect(cluster.recordedLeader()?.node).toBe("server-3");
}

const electedTerms = (cluster: SimCluster) =>
  cluster.log.records.flatMap((record) =>
    record.ok && record.event.type === "LeaderElected" ? [record.event.data] : []
  );

describe("Bully election, simulated", () => {
  it.each(seeds(5))("clean start: the highest id wins (seed %i)", async (seed) => {
    await withSeed(seed, file, async (cluster) => {
      const leader = await startAll(cluster, servers(5));
      expect(leader.node).toBe("server-5");
      // Nodes start one after another, so a lower node may claim first; server-5 then takes over.
      expect(electedTerms(cluster).at(-1)).toEqual(leader);
    });
  });

  it("leader crash: the next highest takes over with the next term", async () => {
    await withSeed(2, file, async (cluster) => {
      await startAll(cluster, servers(5));
      cluster.crash("server-5");
      const before = electedTerms(cluster).length;
      const leader = await cluster.settle(settleBoundMs);
      expect(leader).toEqual({ node: "server-4", term: before + 1 });
    });
  });

  it("leader crash during an election: the election still ends with one leader", async () => {
    await withSeed(3, file, async (cluster) => {
      await startAll(cluster, servers(5));
      cluster.crash("server-5");
      // Past the followers' timeout: they are electing, and server-4 is about to claim.
      await cluster.run(850);
      const during = cluster.views().find((view) => view.node === "server-4")!.state;
      expect(["electing", "waitingForCoordinator", "claiming"]).toContain(during);
      cluster.crash("server-4");
      const leader = await cluster.settle(settleBoundMs);
      expect(leader.node).toBe("server-3");
    });
  });

  it("a graceful leader stop resigns: the next leader is elected without waiting for a timeout", async () => {
    await withSeed(4, file, async (cluster) => {
      await startAll(cluster, servers(3));
      const before = cluster.clock.now();
      cluster.stop("server-3");
      const leader = await cluster.settle(settleBoundMs);
      expect(leader.node).toBe("server-2");
      // Well under the 800 ms a silent leader takes to be noticed.
      expect(cluster.clock.now() - before).toBeLessThan(600);
    });
  });

  it("a higher node returning takes over with a newer term", async () => {
    await withSeed(5, file, async (cluster) => {
      await startAll(cluster, servers(3));
      cluster.crash("server-3");
      expect((await cluster.settle(settleBoundMs)).node).toBe("server-2");
      const before = electedTerms(cluster).length;
      cluster.start("server-3");
      expect(await cluster.settle(settleBoundMs)).toEqual({ node: "server-3", term: before + 1 });
    });
  });

  it("partition and heal: each side may elect, terms never repeat, one leader after healing", async () => {
    await withSeed(6, file, async (cluster) => {
      await startAll(cluster, servers(5));
      const termsBefore = electedTerms(cluster).length;
      cluster.network.partition([["server-1", "server-2"], ["server-3", "server-4", "server-5"]]);
      await cluster.run(3_000);
      // Both sides reach the log but not each other: the cut-off side elects in newer terms,
      // and the sides may take turns; every term still has exactly one leader (checked each step).
      expect(electedTerms(cluster).length).toBeGreaterThan(termsBefore);
      expect(electedTerms(cluster).some((elected) => elected.node === "server-2")).toBe(true);
      cluster.network.heal();
      // Bully after healing: server-5 learns of server-2's newer term and takes over with a newer one.
      const leader = await cluster.settle(settleBoundMs);
      expect(leader.node).toBe("server-5");
      expect(leader.term).toBe(electedTerms(cluster).length);
    });
  });

  it("a leader superseded in the log without hearing of it stops leading, even if its successor dies", async () => {
    await withSeed(8, file, async (cluster) => {
      await supersedeUnheard(cluster);
      // ...and dies. server-2 still believes it leads, in a term the log has moved past.
      cluster.crash("server-3");
      cluster.network.heal();
      const leader = await cluster.settle(settleBoundMs);
      expect(leader.node).toBe("server-2");
      expect(leader.term).toBe(electedTerms(cluster).length);
    });
  });

  it("a superseded leader does not block elections when the newest leader left cleanly", async () => {
    await withSeed(9, file, async (cluster) => {
      await supersedeUnheard(cluster);
      // It leaves properly (NodeLeft): the others' projections no longer name a current leader.
      cluster.stop("server-3");
      await cluster.run(500);
      cluster.network.heal();
      const leader = await cluster.settle(settleBoundMs);
      expect(leader.node).toBe("server-2");
    });
  });

  it("ignores malformed, stale, replayed and unbacked election messages", async () => {
    await withSeed(7, file, async (cluster) => {
      const leader = await startAll(cluster, servers(3));
      const before = electedTerms(cluster).length;
      const intruder = cluster.network.bus("intruder");
      intruder.publish("veil.election.coordinator", "not a map");
      intruder.publish("veil.election.coordinator", { kind: "coordinator", from: "a.b", term: 1 });
      intruder.publish("veil.election.alive", { kind: "alive", from: "ghost", term: 999 });
      intruder.publish("veil.election.coordinator", { kind: "coordinator", from: "server-1", term: 1 });
      intruder.publish("veil.election.resign", { kind: "resign", from: "server-3", term: 0 });
      intruder.publish("veil.election.election", { kind: "election", from: "server-0", term: 0 });
      intruder.publish("veil.election.election", encodeMessage([1, 2, 3]));
      await cluster.run(2_000);
      expect(await cluster.settle(settleBoundMs)).toEqual(leader);
      expect(electedTerms(cluster)).toHaveLength(before);
    });
  });

  it.each(seeds(60))("random faults, crashes, restarts and partitions (seed %i)", async (seed) => {
    await withSeed(seed, file, async (cluster) => {
      const nodes = servers(cluster.random.between(3, 6));
      for (const node of nodes) cluster.start(node);
      cluster.network.faults = randomFaults(cluster.random);
      for (let round = 0; round < 12; round++) {
        const node = cluster.random.pick(nodes);
        const roll = cluster.random.next();
        if (roll < 0.25 && cluster.alive.includes(node)) cluster.crash(node);
        else if (roll < 0.35 && cluster.alive.includes(node)) cluster.stop(node);
        else if (roll < 0.6 && !cluster.alive.includes(node)) cluster.start(node);
        else if (roll < 0.75) {
          const cut = cluster.random.between(1, nodes.length - 1);
          cluster.network.partition([nodes.slice(0, cut), nodes.slice(cut)]);
        } else if (roll < 0.9) cluster.network.heal();
        await cluster.run(cluster.random.between(100, 1_500));
      }
      // Faults stop: the network heals, everyone comes back, and the cluster must agree.
      cluster.network.heal();
      cluster.network.faults = { ...calmNetwork };
      for (const node of nodes) if (!cluster.alive.includes(node)) cluster.start(node);
      const leader = await cluster.settle(settleBoundMs);
      expect(cluster.alive).toContain(leader.node);
    });
  });
});
