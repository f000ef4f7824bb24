/**
 * The leader's duties (membership, repair, garbage collection, the sharing sweep) as one
 * machine, a region per duty: each waits its interval, runs a round, and waits again, so a
 * slow round is never overlapped by the next. The intervals are XState delays: the actor runs
 * on whatever clock it is given, the system's or the simulator's, and the host keeps no
 * timers of its own. A round that fails is reported and the duty goes on; stopping the actor
 * (the server no longer leads) ends every duty, and a round then in flight finds out through
 * its own `stillLeading` check.
 */
import { createMachine, fromPromise } from "xstate";

export interface LeaderDuty {
  readonly name: string;
  readonly intervalMs: number;
  readonly round: () => Promise<unknown>;
}

export function leaderDutiesMachine(duties: readonly LeaderDuty[], report: (duty: string, error: Error) => void) {
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
  return createMachine({ id: "leader-duties", type: "parallel", states: regions });
}
