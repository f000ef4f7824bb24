/**
 * A server judges time (when a session or grant ends, how old an unreferenced chunk is, how
 * long a ticket lasts) by its host's clock, and tolerates that clock running up to
 * limits.clockSkewMaxMs ahead. A host whose clock is further off (set two days ahead, say)
 * would end grants and sessions early, or keep them past their end: so the server compares
 * its clock with the broker's, which stamps every message it stores, and while the two
 * disagree beyond the bound it refuses every decision that takes the time, says so loudly,
 * and reports the offset in its heartbeat for `veil health`.
 */
import type { Clock, Logger, Timers } from "../ports.ts";
import { limits, UnavailableError } from "../../events/mod.ts";

/** How far this host's clock is ahead of the broker's (negative: behind); undefined when not yet known. */
export interface ClockCheck {
  offsetMs(): Promise<number | undefined>;
  /**
   * Milliseconds on a clock that never jumps (the process's monotonic time): between two
   * checks, a host clock that moves unlike it was set (by hand, by a bad NTP step), and the
   * offset measured last is carried forward by the difference.
   */
  elapsedMs(): number;
}

export interface CheckedClock {
  /** The host's clock for decisions about time: it throws an UnavailableError while the host's clock is off. */
  readonly judged: Clock;
  /** The offset now: the last one measured, carried forward by how the host's clock moved since. */
  offsetMs(): number | undefined;
  /** Measures once (a round of the server's). */
  measure(): Promise<void>;
  /** Measures until the offset is known (the server's first heartbeat stored), with a bound. */
  settle(timers: Timers): Promise<void>;
}

const describe = (offsetMs: number) => {
  const size = Math.abs(offsetMs);
  const amount = size >= 3_600_000
    ? `${(size / 3_600_000).toFixed(1)} h`
    : size >= 1_000
    ? `${(size / 1_000).toFixed(1)} s`
    : `${size} ms`;
  return `${amount} ${offsetMs > 0 ? "ahead of" : "behind"}`;
};

export function checkedClock(deps: { clock: Clock; check?: ClockCheck; logger: Logger; nodeId: string }): CheckedClock {
  const { clock, check, logger, nodeId } = deps;
  // The last measurement: the offset, and the host's and the monotonic clock's readings then.
  let measured: { offset: number; wall: number; elapsed: number } | undefined;
  let wasOff = false;
  const offsetNow = () =>
    measured && check
      ? Math.round(measured.offset + (clock.now() - measured.wall) - (check.elapsedMs() - measured.elapsed))
      : undefined;
  /** The offset now, said loudly when it crosses the bound either way. */
  const judge = () => {
    const offset = offsetNow();
    const off = offset !== undefined && Math.abs(offset) > limits.clockSkewMaxMs;
    if (off && !wasOff) {
      logger.error(
        `this server's clock is ${describe(offset!)} the broker's: it refuses every decision that takes the time ` +
          "(expiry, garbage collection, tickets) until they agree; fix the host's time (NTP)",
        { offsetMs: offset! },
      );
    } else if (wasOff && !off) {
      logger.info("this server's clock agrees with the broker's again", { offsetMs: offset! });
    }
    wasOff = off;
    return { offset, off };
  };
  const measure = async () => {
    if (!check) return;
    const offset = await check.offsetMs();
    if (offset === undefined) return;
    measured = { offset, wall: clock.now(), elapsed: check.elapsedMs() };
    judge();
  };
  return {
    judged: {
      now: () => {
        const { offset, off } = judge();
        if (off) {
          throw new UnavailableError(
            `server ${nodeId}'s clock is ${describe(offset!)} the broker's; it decides nothing that takes the time ` +
              `until they agree within ${limits.clockSkewMaxMs} ms (retry: another server may answer)`,
          );
        }
        return clock.now();
      },
    },
    offsetMs: offsetNow,
    measure,
    async settle(timers) {
      for (let attempt = 0; check && !measured && attempt < limits.clockSettleAttempts; attempt++) {
        await measure().catch(() => {});
        if (!measured) await new Promise<void>((resolve) => timers.setTimeout(resolve, limits.clockSettleDelayMs));
      }
    },
  };
}
