/**
 * The mailer: while its server leads, it delivers what waits in the outbox. Every interval
 * (an XState delay, so simulated time drives it too), a TICK, and the end of each round
 * start a round when none runs; a failed round waits a retry delay,
 * so a mail server that is down is not hammered. Delivery is at least once: a mail sent
 * just before a crash, whose `NotificationSent` did not land, is sent again.
 */
import { fromPromise, setup } from "xstate";
import { limits } from "../../events/mod.ts";

export type MailerEvent = { readonly type: "TICK" } | { readonly type: "STOP" };

export const mailerMachine = setup({
  types: { events: {} as MailerEvent, output: {} as { stopped: true } },
  actors: {
    /** Delivers up to a batch of pending notifications; resolves with how many are left. */
    deliverRound: fromPromise<number>(() => Promise.reject(new Error("programmer error: deliverRound not provided"))),
  },
  actions: {
    /** Says why a round failed (provided: it needs a logger). */
    reportFailure: () => {},
  },
  guards: {
    hasMore: ({ event }) => (event as unknown as { output: number }).output > 0,
  },
  delays: { interval: limits.mailerIntervalMs, retryDelay: limits.mailerRetryDelayMs },
}).createMachine({
  id: "mailer",
  initial: "idle",
  states: {
    idle: { after: { interval: "delivering" }, on: { TICK: "delivering", STOP: "stopped" } },
    delivering: {
      invoke: {
        src: "deliverRound",
        onDone: [{ guard: "hasMore", target: "delivering", reenter: true }, { target: "idle" }],
        onError: { target: "waiting", actions: "reportFailure" },
      },
      on: { STOP: "stopped" },
    },
    waiting: { after: { retryDelay: "idle" }, on: { STOP: "stopped" } },
    stopped: { type: "final" },
  },
  output: { stopped: true },
});
