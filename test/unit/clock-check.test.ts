/**
 * The judged clock (actors/server/clock-check.ts): a server decides about time only while its
 * clock agrees with the broker's, measured by the broker's stamps and carried forward between
 * measurements by a clock that never jumps.
 */
import { describe, expect, it } from "vitest";
import { checkedClock } from "../../actors/server/clock-check.ts";
import { limits, UnavailableError } from "../../events/mod.ts";
import type { Logger } from "../../actors/ports.ts";

const day = 24 * 3_600_000;

/** A host clock that can be set, a monotonic one that only moves with real time, and the broker's answer. */
function host() {
  const world = { trueNow: 1_800_000_000_000, hostAhead: 0, stored: true };
  const errors: string[] = [];
  const logger: Logger = { debug() {}, info() {}, warn() {}, error: (message) => void errors.push(message) };
  const time = checkedClock({
    clock: { now: () => world.trueNow + world.hostAhead },
    check: {
      offsetMs: () => Promise.resolve(world.stored ? world.hostAhead : undefined),
      elapsedMs: () => world.trueNow - 1_800_000_000_000,
    },
    logger,
    nodeId: "server-1",
  });
  return { world, errors, time };
}

describe("a server's judged clock", () => {
  it("tells the time while the host's clock agrees with the broker's within the bound", async () => {
    const { world, time } = host();
    world.hostAhead = limits.clockSkewMaxMs;
    await time.measure();
    expect(time.judged.now()).toBe(world.trueNow + limits.clockSkewMaxMs);
    expect(time.offsetMs()).toBe(limits.clockSkewMaxMs);
  });

  it("refuses, says why and says it once, when the host's clock is two days ahead", async () => {
    const { world, errors, time } = host();
    world.hostAhead = 2 * day;
    await time.measure();
    expect(() => time.judged.now()).toThrow(UnavailableError);
    expect(() => time.judged.now()).toThrow(/server-1's clock is 48\.0 h ahead of the broker's/);
    await time.measure();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/refuses every decision that takes the time.*NTP/);
  });

  it("notices a clock set ahead between two measurements, at once, and agrees again when it is set back", async () => {
    const { world, time } = host();
    await time.measure();
    world.trueNow += 1_000;
    world.hostAhead = 2 * day;
    // No measurement since: the host clock moved two days more than the monotonic one.
    expect(() => time.judged.now()).toThrow(/48\.0 h ahead/);
    expect(time.offsetMs()).toBe(2 * day);
    world.hostAhead = -5_000;
    expect(() => time.judged.now()).toThrow(/5\.0 s behind/);
    world.hostAhead = 0;
    expect(time.judged.now()).toBe(world.trueNow);
  });

  it("settles once the first heartbeat is stored, and gives up waiting after its bound", async () => {
    const { world, time } = host();
    world.stored = false;
    let waits = 0;
    const timers = {
      setTimeout: (callback: () => void) => {
        if (++waits === 3) world.stored = true;
        callback();
      },
      clearTimeout() {},
    };
    await time.settle(timers);
    expect(waits).toBe(3);
    expect(time.offsetMs()).toBe(0);

    const never = host();
    never.world.stored = false;
    let tries = 0;
    await never.time.settle({ setTimeout: (callback: () => void) => (tries++, callback()), clearTimeout() {} });
    expect(tries).toBe(limits.clockSettleAttempts);
    expect(never.time.offsetMs()).toBeUndefined();
  });
});
