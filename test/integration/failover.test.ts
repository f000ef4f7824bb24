/**
 * Failover with real processes on a real nats-server: three `veil node` servers, SIGKILL the
 * leader, a new leader is elected and recorded; restart the old one, and it takes over again.
 */
import { afterAll, describe, expect, it } from "vitest";
import { decodeMessage, leaderSubject, nodeSubject } from "../../events/mod.ts";
import { type RunningVeil, runVeil, startVeil } from "../support/cli.ts";
import { waitForEvent } from "../support/events.ts";
import { useNatsServer, waitForHeartbeat } from "../support/nats.ts";

const nats = useNatsServer();
const clusterKey = "5e".repeat(32);
const running = new Map<string, RunningVeil>();

afterAll(async () => {
  for (const node of running.values()) {
    node.child.kill("SIGTERM");
    await node.exited;
  }
});

async function startNode(id: string): Promise<void> {
  const node = startVeil(["node", "--role", "server", "--id", id], {
    // One key for the whole cluster, as a real deployment gives every server.
    env: { ...nats.env, VEIL_LOG: "warn", VEIL_CLUSTER_KEY: clusterKey },
  });
  running.set(id, node);
  await node.waitForOutput(/Press Ctrl-C to stop/);
}

const elected = (node: string) => (event: { type: string; data: unknown }) =>
  event.type === "LeaderElected" && (event.data as { node: string }).node === node;

describe("failover across processes", () => {
  it("elects, survives a SIGKILLed leader, records it, and converges when it returns", async () => {
    await Promise.all(["server-1", "server-2", "server-3"].map(startNode));
    const first = await waitForEvent(nats.log, elected("server-3"), { timeoutMs: 10_000, what: "server-3 elected" });
    // On a loaded machine a late heartbeat can cost extra terms before the kill; Bully ends with the
    // highest server leading, so wait until the log's latest term is server-3's again, then compare with it.
    let before = await nats.log.readLast(leaderSubject);
    for (
      let round = 0;
      !(before?.ok && before.event.type === "LeaderElected" && before.event.data.node === "server-3");
      round++
    ) {
      expect(round, "rounds of elections before server-3 settles").toBeLessThan(5);
      await waitForEvent(nats.log, elected("server-3"), {
        fromSeq: (before?.seq ?? 0) + 1,
        timeoutMs: 10_000,
        what: "server-3 leading again",
      });
      before = await nats.log.readLast(leaderSubject);
    }
    const termBeforeKill = before.event.data.term;
    expect(termBeforeKill).toBeGreaterThanOrEqual((first.event.data as { term: number }).term);

    running.get("server-3")!.child.kill("SIGKILL");
    expect(await running.get("server-3")!.exited).toBe(null);
    running.delete("server-3");
    const second = await waitForEvent(nats.log, elected("server-2"), {
      fromSeq: before.seq + 1,
      timeoutMs: 10_000,
      what: "server-2 elected after the kill",
    });
    const secondTerm = (second.event.data as { term: number }).term;
    expect(secondTerm).toBeGreaterThan(termBeforeKill);
    // The new leader records the silent node as gone once its heartbeat times out.
    await waitForEvent(
      nats.log,
      (event) => event.type === "NodeLeft" && event.data.node === "server-3" && event.data.reason === "timeout",
      { fromSeq: first.seq + 1, timeoutMs: 10_000, what: "server-3 recorded as gone" },
    );

    await startNode("server-3");
    const third = await waitForEvent(nats.log, elected("server-3"), {
      fromSeq: second.seq + 1,
      timeoutMs: 10_000,
      what: "server-3 taking over again",
    });
    expect((third.event.data as { term: number }).term).toBeGreaterThan(secondTerm);

    // Every term in the log is won exactly once, in order.
    const { records } = await nats.log.readAggregate(leaderSubject);
    const terms = records.flatMap((record) =>
      record.ok && record.event.type === "LeaderElected" ? [record.event.data.term] : []
    );
    expect(terms).toEqual(terms.map((_, index) => index + 1));

    // The servers agree, as the CLI shows. A follower adopts a leader only once its own
    // projection records that leader's term, so these heartbeats mean every server knows.
    await Promise.all(
      ["server-1", "server-2"].map((id) => waitForHeartbeat(nats.nc, id, (beat) => beat.leader === "server-3", 5_000)),
    );
    const nodes = await runVeil(["nodes", "--json"], { env: nats.env });
    expect(nodes.code).toBe(0);
    const view = JSON.parse(nodes.stdout) as { id: string; leader: boolean; alive: boolean }[];
    expect(view.filter((node) => node.leader).map((node) => node.id)).toEqual(["server-3"]);
    expect(
      (await nats.log.readAggregate(nodeSubject("server-3"))).records.map((record) => record.ok && record.event.type),
    )
      .toEqual(["NodeJoined", "NodeLeft", "NodeJoined"]);

    const health = await runVeil(["health", "--json"], { env: nats.env });
    expect(health.code).toBe(0);
    expect(JSON.parse(health.stdout)).toMatchObject({ healthy: true, leader: { node: "server-3" }, problems: [] });
    const topology = await runVeil(["topology"], { env: nats.env });
    expect(topology.stdout).toMatch(/└─ server-3 \(leader\)/);
    expect(topology.stdout).toMatch(/server-1 \(follower\)[\s\S]*server-2 \(follower\)/);
  }, 60_000);

  // That a resignation spares the followers their timeout is checked in simulated time
  // (test/sim/election.test.ts); real time would make it a timing assertion.
  it("a leader stopped gracefully announces its resignation and leaves; the next leader is elected", async () => {
    const last = await nats.log.readLast(leaderSubject);
    const resigned = new Promise<{ from: string }>((resolve) => {
      const subscription = nats.nc.subscribe("veil.election.resign", {
        callback: (_, message) => {
          subscription.unsubscribe();
          resolve(decodeMessage(message.data) as { from: string });
        },
      });
    });
    await nats.nc.flush();
    running.get("server-3")!.child.kill("SIGTERM");
    expect(await running.get("server-3")!.exited).toBe(0);
    running.delete("server-3");
    expect((await resigned).from).toBe("server-3");
    await waitForEvent(nats.log, elected("server-2"), {
      fromSeq: last!.seq + 1,
      timeoutMs: 10_000,
      what: "server-2 elected",
    });
    const { records } = await nats.log.readAggregate(nodeSubject("server-3"));
    expect(records.at(-1)).toMatchObject({ ok: true, event: { type: "NodeLeft", data: { reason: "shutdown" } } });
  }, 30_000);
});
