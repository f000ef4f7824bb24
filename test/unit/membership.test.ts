import { describe, expect, it } from "vitest";
import { leaderSubject, nodeSubject, type VeilEvent } from "../../events/mod.ts";
import { MemoryEventLog } from "../sim/memory-log.ts";
import { reconcileMembership } from "../../actors/server/membership.ts";
import {
  clusterProjection,
  type ClusterState,
  defaultHeartbeatTimeouts,
  emptyHealth,
  fold,
  observeHeartbeat,
} from "../../projections/mod.ts";
import { elected, joined, left } from "../support/events.ts";
import { silentLogger } from "../support/logger.ts";

let now = 100_000;
const clock = { now: () => now };

async function given(...setup: [string, VeilEvent][]) {
  const log = new MemoryEventLog(clock);
  for (const [subject, event] of setup) await log.append(subject, [event]);
  return log;
}

async function state(log: MemoryEventLog) {
  const events = [];
  for await (const record of log.replay()) if (record.ok) events.push(record.event);
  return fold(clusterProjection, events);
}

/** The duty as leader s2 of term 1 runs it, seeing `cluster` and `health`. */
const dutyOf = (log: MemoryEventLog, cluster: ClusterState, health = emptyHealth(), leaderSince = 0) => ({
  nodeId: "s2",
  term: 1,
  log,
  clock,
  ids: { next: () => crypto.randomUUID() },
  logger: silentLogger,
  cluster: () => cluster,
  health: () => health,
  heartbeatTimeouts: defaultHeartbeatTimeouts,
  leaderSince,
  stillLeading: () => true,
});

async function reconcile(log: MemoryEventLog, health = emptyHealth(), leaderSince = 0) {
  await reconcileMembership(dutyOf(log, await state(log), health, leaderSince));
}

describe("leader membership duty", () => {
  it("records a silent node as gone, and a node heard again as joined", async () => {
    const log = await given([leaderSubject, elected("s2", 1)], [nodeSubject("s1"), joined("s1")]);
    await reconcile(log);
    expect((await state(log)).nodes.s1).toMatchObject({ status: "left", leftReason: "timeout" });

    now += 1;
    await reconcile(
      log,
      observeHeartbeat(emptyHealth(), {
        node: "s1",
        role: "server",
        state: "follower",
        term: 1,
        inFlight: 0,
        memoryBytes: 1,
        sentAt: now,
      }, now),
    );
    expect((await state(log)).nodes.s1).toMatchObject({ status: "joined" });
  });

  it("gives a node it never heard from a full timeout after it became leader", async () => {
    const log = await given([leaderSubject, elected("s2", 1)], [nodeSubject("s1"), joined("s1")]);
    await reconcile(log, emptyHealth(), now - 1_000);
    expect((await state(log)).nodes.s1).toMatchObject({ status: "joined" });
  });

  it("does nothing unless it holds the latest term the log records", async () => {
    const log = await given([leaderSubject, elected("s2", 1)], [leaderSubject, elected("s3", 2)], [
      nodeSubject("s1"),
      joined("s1"),
    ]);
    await reconcile(log);
    expect((await state(log)).nodes.s1).toMatchObject({ status: "joined" });
  });

  it("decides against the node's aggregate: a stale view does not record twice", async () => {
    const log = await given([leaderSubject, elected("s2", 1)], [nodeSubject("s1"), joined("s1")]);
    const stale = await state(log);
    const args = dutyOf(log, stale);
    await reconcileMembership(args);
    await reconcileMembership(args);
    const { records } = await log.readAggregate(nodeSubject("s1"));
    expect(records.map((record) => record.ok && record.event.type)).toEqual(["NodeJoined", "NodeLeft"]);
  });

  const heard = (state: string, sentAt: number) =>
    observeHeartbeat(emptyHealth(), {
      node: "s1",
      role: "server",
      state,
      term: 1,
      inFlight: 0,
      memoryBytes: 1,
      sentAt,
    }, sentAt);

  it("does not make a node that is saying goodbye a member again", async () => {
    const log = await given([leaderSubject, elected("s2", 1)], [nodeSubject("s1"), joined("s1")], [
      nodeSubject("s1"),
      left("s1", "server", now),
    ]);
    await reconcile(log, heard("stopping", now + 1));
    expect((await state(log)).nodes.s1).toMatchObject({ status: "left" });
    await reconcile(log, heard("follower", now - 1));
    expect((await state(log)).nodes.s1).toMatchObject({ status: "left" });
  });

  it("stops in the middle of a round when it no longer leads", async () => {
    const log = await given([leaderSubject, elected("s2", 1)], [nodeSubject("s1"), joined("s1")]);
    await reconcileMembership({ ...dutyOf(log, await state(log)), stillLeading: () => false });
    expect((await state(log)).nodes.s1).toMatchObject({ status: "joined" });
  });
});
