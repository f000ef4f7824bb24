import { describe, expect, it } from "vitest";
import { createActor, fromCallback, fromPromise, SimulatedClock, toPromise, waitFor } from "xstate";
import { serverMachine } from "../../actors/server/mod.ts";

/** A server whose effects record their order; `fail` names effects that reject. */
function serverWith(options: { fail?: string[]; holdJoin?: boolean; holdClaim?: boolean } = {}) {
  const calls: string[] = [];
  let releaseJoin = () => {};
  let releaseClaim = (_term: number) => {};
  let reportFailure: (reason: string) => void = () => {};
  const effect = (name: string) =>
    fromPromise<void, { nodeId: string }>(async ({ input }) => {
      calls.push(`${name}:${input.nodeId}`);
      if (name === "announceJoin" && options.holdJoin) await new Promise<void>((resolve) => (releaseJoin = resolve));
      if (options.fail?.includes(name)) throw new Error(`${name} broke`);
    });
  const machine = serverMachine.provide({
    actors: {
      announceJoin: effect("announceJoin"),
      keepProjections: fromCallback(({ sendBack }) => {
        calls.push("keepProjections");
        sendBack({ type: "PROJECTIONS_LIVE" });
        reportFailure = (reason) => sendBack({ type: "PROJECTIONS_FAILED", reason });
        return () => calls.push("keepProjections:cleanup");
      }),
      persistProjections: effect("persistProjections"),
      announceLeave: effect("announceLeave"),
      // The election is simulated elsewhere (test/sim); here it only needs to be able to win.
      listen: fromCallback(() => {}),
      claimLeadership: fromPromise(() =>
        options.holdClaim
          ? new Promise<{ term: number }>((resolve) => (releaseClaim = (term) => resolve({ term })))
          : Promise.resolve({ term: 1 })
      ),
      leaderDuties: fromCallback(() => {}),
    },
    actions: {
      broadcastElection: () => {},
      sendAnswer: () => {},
      broadcastCoordinator: () => {},
      broadcastAlive: () => {},
      broadcastResign: () => void calls.push("broadcastResign"),
      logIgnored: () => {},
      logStepDown: () => {},
      logSuperseded: () => {},
      adoptRecordedLeader: () => {},
    },
    guards: { isSupersededInLog: () => false },
  });
  const clock = new SimulatedClock();
  const actor = createActor(machine, { input: { nodeId: "server-1" }, clock });
  return {
    actor,
    clock,
    calls,
    releaseJoin: () => releaseJoin(),
    releaseClaim: (term: number) => releaseClaim(term),
    reportFailure: (reason: string) => reportFailure(reason),
  };
}

function settled(
  actor: ReturnType<typeof serverWith>["actor"],
  value: "running" | { running: { projections: "live" } } | { running: { election: "leader" } },
) {
  return waitFor(actor, (snapshot) => snapshot.matches(value), { timeout: 1_000 });
}

describe("server machine", () => {
  it("joins, keeps projections, then on STOP persists them and leaves, in that order", async () => {
    const { actor, calls } = serverWith();
    actor.start();
    await settled(actor, { running: { projections: "live" } });
    actor.send({ type: "STOP" });
    const output = await toPromise(actor);
    expect(actor.getSnapshot().value).toBe("stopped");
    expect(output).toEqual({ problem: undefined });
    expect(calls).toEqual([
      "announceJoin:server-1",
      "keepProjections",
      "keepProjections:cleanup",
      "persistProjections:server-1",
      "announceLeave:server-1",
    ]);
  });

  it("as leader, resigns before it stops, so the next election starts at once", async () => {
    const { actor, clock, calls } = serverWith();
    actor.start();
    await settled(actor, "running");
    clock.increment(1_000); // no answer from a higher node: it claims and wins
    await settled(actor, { running: { election: "leader" } });
    actor.send({ type: "STOP" });
    await toPromise(actor);
    const order = ["broadcastResign", "persistProjections:server-1", "announceLeave:server-1"].map((call) =>
      calls.indexOf(call)
    );
    expect(order.every((position) => position >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it("does not lead when its claim lands after it learned of a newer term", async () => {
    const { actor, clock, releaseClaim } = serverWith({ holdClaim: true });
    actor.start();
    await settled(actor, "running");
    clock.increment(1_000); // no answer: it claims, and the claim is slow
    await waitFor(actor, (snapshot) => snapshot.matches({ running: { election: "claiming" } }), { timeout: 1_000 });
    actor.send({ type: "COORDINATOR", from: "server-2", term: 2 });
    releaseClaim(1);
    await waitFor(actor, (snapshot) => !snapshot.matches({ running: { election: "claiming" } }), { timeout: 1_000 });
    expect(actor.getSnapshot().matches({ running: { election: "follower" } })).toBe(true);
    expect(actor.getSnapshot().context).toMatchObject({ leader: "server-2", term: 2 });
    actor.stop();
  });

  it("fails, without keeping projections, when it cannot join", async () => {
    const { actor, calls } = serverWith({ fail: ["announceJoin"] });
    actor.start();
    const output = await toPromise(actor);
    expect(actor.getSnapshot().value).toBe("failed");
    expect(output.problem).toBe("announceJoin broke");
    expect(calls).toEqual(["announceJoin:server-1"]);
  });

  it("still leaves when persisting fails, and reports the problem", async () => {
    const { actor, calls } = serverWith({ fail: ["persistProjections"] });
    actor.start();
    await settled(actor, "running");
    actor.send({ type: "STOP" });
    const output = await toPromise(actor);
    expect(output.problem).toBe("persistProjections broke");
    expect(calls.at(-1)).toBe("announceLeave:server-1");
  });

  it("stops gracefully when following the log fails", async () => {
    const { actor, calls, reportFailure } = serverWith();
    actor.start();
    await settled(actor, "running");
    reportFailure("connection closed");
    const output = await toPromise(actor);
    expect(output.problem).toBe("connection closed");
    expect(calls.slice(-2)).toEqual(["persistProjections:server-1", "announceLeave:server-1"]);
  });

  it("when stopped during its join, waits for the join to land, then leaves without serving", async () => {
    const { actor, calls, releaseJoin } = serverWith({ holdJoin: true });
    actor.start();
    actor.send({ type: "STOP" });
    expect(actor.getSnapshot().value).toBe("starting");
    expect(calls).toEqual(["announceJoin:server-1"]);
    releaseJoin();
    await toPromise(actor);
    expect(actor.getSnapshot().value).toBe("stopped");
    expect(calls).toEqual(["announceJoin:server-1", "persistProjections:server-1", "announceLeave:server-1"]);
  });

  it("when stopped during a join that fails, fails without announcing a departure", async () => {
    const { actor, calls, releaseJoin } = serverWith({ holdJoin: true, fail: ["announceJoin"] });
    actor.start();
    actor.send({ type: "STOP" });
    releaseJoin();
    await toPromise(actor);
    expect(actor.getSnapshot().value).toBe("failed");
    expect(calls).toEqual(["announceJoin:server-1"]);
  });
});
