/**
 * The log on a broker cluster of three (as `veil up --broker-cluster 3` runs it, streams
 * with three replicas): the stream leader's node is SIGKILLed while appends go on, then
 * restarted, then another. Every acknowledged append is in the log exactly once, a live
 * projection keeps following and equals a rebuild, and the replicas report what happened.
 */
import process from "node:process";
import { describe, expect, it, vi } from "vitest";
import { nodeSubject } from "../../events/mod.ts";
import { clusterProjection } from "../../projections/mod.ts";
import { Projector, projectUntil } from "../../actors/server/projector.ts";
import { systemClock, systemTimers } from "../../infra/clock.ts";
import { eventStreamName } from "../../infra/nats/streams.ts";
import { streamReplicas } from "../../infra/nats/replicas.ts";
import { recordingLogger } from "../support/logger.ts";
import { useNatsServer } from "../support/nats.ts";
import { joined } from "../support/events.ts";

const nats = useNatsServer({ brokerNodes: 3 });

/** The index of the broker node that leads the event stream now. */
async function streamLeader(): Promise<number> {
  const leader = await vi.waitFor(async () => {
    const name = (await nats.jsm.streams.info(eventStreamName)).cluster?.leader;
    if (!name) throw new Error("no stream leader yet");
    return name;
  }, { timeout: 30_000, interval: 200 });
  return nats.broker!.nodes.findIndex((node) => node.serverName === leader);
}

describe("the log on a broker cluster of three", () => {
  it("creates veil's streams with three replicas", async () => {
    const streams = await streamReplicas(nats.nc);
    expect(streams.map((stream) => [stream.name, stream.replicas])).toEqual([
      ["VEIL_EVENTS", 3],
      ["VEIL_CLUSTER", 3],
      ["KV_veil_snapshots", 0], // no server made the buckets here
      ["KV_veil_grant_shares", 0],
    ].map(([name, replicas]) => [name, replicas]));
  });

  it(
    "loses no acknowledged append and duplicates none while broker nodes die, and a live projection follows",
    async () => {
      const { logger } = recordingLogger();
      const snapshots = { load: () => Promise.resolve(undefined), save: () => Promise.resolve() };
      const projector = new Projector({
        log: nats.log,
        snapshots,
        projection: clusterProjection,
        logger,
        timers: systemTimers,
        clock: systemClock,
      });
      await projector.start();
      const acknowledged: string[] = [];
      const failed: string[] = [];
      let writing = true;
      let count = 0;
      const writer = (async () => {
        while (writing) {
          const node = `node-${count++}`;
          try {
            await nats.log.append(nodeSubject(node), [joined(node)]);
            acknowledged.push(node);
          } catch (error) {
            // A retryable error past the retry window is allowed; a lost acknowledged write is not.
            failed.push(`${node}: ${(error as Error).name}`);
          }
        }
      })();
      const ackedAfter = async (minimum: number) =>
        await vi.waitFor(() => expect(acknowledged.length).toBeGreaterThanOrEqual(minimum), { timeout: 60_000 });

      for (let round = 0; round < 2; round++) {
        await ackedAfter(acknowledged.length + 20);
        const victim = await streamLeader();
        process.kill(nats.broker!.nodes[victim]!.pid, "SIGKILL");
        // Appends go on with two of three nodes: a new stream leader takes over.
        await ackedAfter(acknowledged.length + 20);
        const offline = await vi.waitFor(async () => {
          const events = (await streamReplicas(nats.nc)).find((stream) => stream.name === eventStreamName)!;
          if (events.problems.length === 0) throw new Error("the dead node's replica is not reported yet");
          return events.problems;
        }, { timeout: 30_000, interval: 500 });
        expect(offline.join("; ")).toMatch(/broker-\d/);
        await nats.broker!.restart(victim);
        await vi.waitFor(async () => {
          const events = (await streamReplicas(nats.nc)).find((stream) => stream.name === eventStreamName)!;
          expect(events.problems).toEqual([]);
        }, { timeout: 60_000, interval: 500 });
      }
      writing = false;
      await writer;

      const rebuilt = await projectUntil({ log: nats.log, projection: clusterProjection, logger });
      const stored = Object.keys(rebuilt.state.nodes).filter((node) => node.startsWith("node-"));
      for (const node of acknowledged) expect(stored).toContain(node);
      // Each append joins a node of its own: a retry that wrote twice would store two events for it.
      const perNode = new Map<string, number>();
      for await (const record of nats.log.replay({})) {
        if (record.ok && record.event.type === "NodeJoined") {
          perNode.set(record.subject, (perNode.get(record.subject) ?? 0) + 1);
        }
      }
      expect(perNode.size).toBeGreaterThanOrEqual(acknowledged.length);
      expect([...perNode.entries()].filter(([, times]) => times > 1)).toEqual([]);
      await projector.caughtUp(30_000);
      expect(projector.state).toEqual(rebuilt.state);
      expect(failed.length).toBeLessThan(acknowledged.length);
      await projector.stop();
    },
    300_000,
  );
});
