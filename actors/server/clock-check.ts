/**
 * A server judges time (when a session or grant ends, how old an unreferenced chunk is, how
 * long a ticket lasts) by its host's clock, and tolerates that clock running up to
 * limits.clockSkewMaxMs ahead. A host whose clock is further off (set two days ahead, say)
 * would end grants and sessions early, or keep them past their end: so the server compares
 * its clock with the broker's, which stamps every message it stores, and while the two
 * disagree beyond the bound it refuses every decision that takes the time, says so loudly,
 * and reports the offset in its heartbeat for `veil health`.
 */
import type { Clock, Logger } from "../ports.ts";
import { limits, UnavailableError } from "../../events/mod.ts";

/** How far this host's clock is ahead of the broker's (negative: behind); undefined when not yet known. */
export interface ClockCheck {
  offsetMs(): Promise<number | undefined>;
}

export interface CheckedClock {
  /** The host's clock for decisions about time: it throws an UnavailableError while the host's clock is off. */
  readonly judged: Clock;
  /** The last offset measured, for the heartbeat. */
  offsetMs(): number | undefined;
  /** Measures once (a round of the server's). */
  measure(): Promise<void>;
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
  let offset: number | undefined;
  const off = () => offset !== undefined && Math.abs(offset) > limits.clockSkewMaxMs;
  return {
    judged: {
      now: () => {
        if (off()) {
          throw new UnavailableError(
            `server ${nodeId}'s clock is ${describe(offset!)} the broker's; it decides nothing that takes the time ` +
              `until they agree within ${limits.clockSkewMaxMs} ms (retry: another server may answer)`,
          );
        }
        return clock.now();
      },
    },
    offsetMs: () => offset,
    async measure() {
      if (!check) return;
      const measured = await check.offsetMs();
      if (measured === undefined) return;
      const wasOff = off();
      offset = measured;
      if (off() && !wasOff) {
        logger.error(
          `this server's clock is ${describe(measured)} the broker's: it refuses every decision that takes the time ` +
            "(expiry, garbage collection, tickets) until they agree; fix the host's time (NTP)",
          { offsetMs: measured },
        );
      } else if (wasOff && !off()) {
        logger.info("this server's clock agrees with the broker's again", { offsetMs: measured });
      }
    },
  };
}
