/**
 * Work done every so often (a server's heartbeat; the leader's membership, repair, garbage
 * collection and sharing sweep) as one machine, a region per duty: each waits its interval,
 * runs a round, and waits again, so a slow round is never overlapped by the next. The
 * intervals are XState delays: the actor runs on whatever clock it is given, the system's or
 * the simulator's, and the host keeps no timers of its own. A round that fails (or throws)
 * is reported and the duty goes on; stopping the actor ends every duty, and a round then in
 * flight finds out through its own checks (the leader's `stillLeading`).
 */
import { createMachine, fromPromise } from "xstate";

export interface Round {
  readonly name: string;
  readonly intervalMs: number;
  readonly round: () => Promise<unknown>;
}

export function roundsMachine(duties: readonly Round[], report: (duty: string, error: Error) => void) {
  const regions = Object.fromEntries(duties.map((duty) => [duty.name, {
    initial: "waiting",
    states: {
      waiting: { after: { [duty.intervalMs]: "running" } },
      running: {
        invoke: {
          src: fromPromise(() => duty.round()),
          onDone: "waiting",
          onError: {
            target: "waiting",
            actions: ({ event }: { event: { error: unknown } }) => report(duty.name, event.error as Error),
          },
        },
      },
    },
  }]));
  return createMachine({ id: "rounds", type: "parallel", states: regions });
}
