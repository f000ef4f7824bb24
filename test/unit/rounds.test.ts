import { createActor, SimulatedClock } from "xstate";
import { describe, expect, it } from "vitest";
import { type Round, roundsMachine } from "../../actors/rounds.ts";

/** Lets settled promises run their continuations, so the machine sees a round end. */
const settle = async () => {
  for (let turn = 0; turn < 5; turn++) await Promise.resolve();
};

describe("rounds (the heartbeat, the leader's duties)", () => {
  it("runs each duty every interval of the clock it is given, and stops with the actor", async () => {
    const clock = new SimulatedClock();
    const rounds: Record<string, number> = { membership: 0, repair: 0 };
    const duties: Round[] = [
      { name: "membership", intervalMs: 200, round: () => Promise.resolve(void rounds.membership!++) },
      { name: "repair", intervalMs: 1_000, round: () => Promise.resolve(void rounds.repair!++) },
    ];
    const actor = createActor(roundsMachine(duties, () => {}), { clock }).start();
    for (let step = 0; step < 10; step++) {
      clock.increment(200);
      await settle();
    }
    expect(rounds).toEqual({ membership: 10, repair: 2 });
    actor.stop();
    clock.increment(5_000);
    await settle();
    expect(rounds).toEqual({ membership: 10, repair: 2 });
  });

  it("never overlaps a slow round with the next, and goes on after a failed one", async () => {
    const clock = new SimulatedClock();
    const failures: string[] = [];
    let started = 0;
    let finish = () => {};
    const slow: Round = {
      name: "collection",
      intervalMs: 100,
      round: () => {
        started++;
        return new Promise<void>((resolve, reject) => {
          finish = () => (started === 2 ? reject(new Error("a node did not answer")) : resolve());
        });
      },
    };
    const actor = createActor(
      roundsMachine([slow], (duty, error) => failures.push(`${duty}: ${error.message}`)),
      {
        clock,
      },
    ).start();
    clock.increment(100);
    await settle();
    expect(started).toBe(1);
    clock.increment(1_000);
    await settle();
    expect(started).toBe(1);
    finish();
    await settle();
    clock.increment(100);
    await settle();
    expect(started).toBe(2);
    finish();
    await settle();
    expect(failures).toEqual(["collection: a node did not answer"]);
    clock.increment(100);
    await settle();
    expect(started).toBe(3);
    actor.stop();
  });
});
