/**
 * How a storage node running without the cluster key (`veil node --role storage`) learns
 * the ticket public key: it asks the servers (`cluster.keys`, answered by any of them), again
 * every `ticketKeyRetryMs` while none answers, for at most `ticketKeyWaitMs`. The answer is
 * believed because only servers may serve commands (the broker's permissions).
 */
import type { Clock, Logger, Timers } from "../ports.ts";
import { bytes, limits, object, TimeoutError } from "../../events/mod.ts";
import type { CommandSender } from "../peer/commands.ts";

/** Of `cluster.keys`, a storage node needs only the key tickets are checked with. */
const ticketKeyReply = object({ ticketKey: bytes({ lengthMin: 32, lengthMax: 32 }) });

export async function askServersForTicketKey(
  deps: { send: CommandSender; clock: Clock; timers: Timers; logger: Logger },
  signal: AbortSignal,
  bounds: { retryMs: number; waitMs: number } = { retryMs: limits.ticketKeyRetryMs, waitMs: limits.ticketKeyWaitMs },
): Promise<Uint8Array> {
  const { send, clock, timers, logger } = deps;
  const since = clock.now();
  for (let attempt = 1;; attempt++) {
    try {
      const { ticketKey } = ticketKeyReply.parse(await send("cluster.keys"));
      if (attempt > 1) logger.info("learned the cluster's ticket key", { attempts: attempt });
      return ticketKey;
    } catch (error) {
      if (signal.aborted) throw error;
      if (clock.now() - since >= bounds.waitMs) {
        throw new TimeoutError(
          `no server gave the ticket key (cluster.keys) within ${bounds.waitMs} ms (${attempt} tries; last: ` +
            `${(error as Error).message}): start a server, then this node`,
          { cause: error },
        );
      }
      if (attempt === 1) {
        logger.info("waiting for a server to learn the ticket key; puts and gets are refused until then", {
          reason: (error as Error).message,
        });
      }
    }
    await new Promise<void>((resolve) => {
      const timer = timers.setTimeout(resolve, bounds.retryMs);
      signal.addEventListener("abort", () => (timers.clearTimeout(timer), resolve()), { once: true });
    });
    if (signal.aborted) throw new Error("the storage node stopped before it learned the ticket key");
  }
}
