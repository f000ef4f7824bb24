/**
 * An actor over a worker pool (the crypto and stego actors are two of these). It admits
 * work while in-flight plus waiting tasks stay under its bound, and refuses the rest at once
 * with a BusyError, so memory never grows without limit. On STOP it lets admitted work
 * finish, then closes the pool. The pool is the injected effect (`workerEffects`).
 */
import { assign, fromPromise, setup } from "xstate";
import { BusyError } from "../../events/mod.ts";
import type { WorkerPool } from "../ports.ts";

export type WorkResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: Error };

export type WorkerEvent =
  | {
    readonly type: "RUN";
    readonly operation: string;
    readonly input: unknown;
    readonly transfer?: readonly ArrayBuffer[];
    readonly urgent?: boolean;
    readonly reply: (result: WorkResult) => void;
  }
  | { readonly type: "SETTLED" }
  | { readonly type: "STOP" };

export interface WorkerContext {
  readonly name: string;
  /** Tasks admitted and not yet settled (running or waiting for a worker). */
  readonly admitted: number;
  readonly admittedMax: number;
}

export const workerMachine = setup({
  types: {
    input: {} as { name: string; admittedMax: number },
    context: {} as WorkerContext,
    events: {} as WorkerEvent,
  },
  actors: {
    closePool: fromPromise<void>(() => Promise.reject(new Error("programmer error: closePool not provided"))),
  },
  guards: {
    isFull: ({ context }) => context.admitted >= context.admittedMax,
    isIdle: ({ context }) => context.admitted === 0,
  },
  actions: {
    refuseBusy: ({ context, event }) =>
      event.type === "RUN" &&
      event.reply({
        ok: false,
        error: new BusyError(`the ${context.name} actor is busy (${context.admitted} tasks); retry`),
      }),
    refuseStopping: ({ context, event }) =>
      event.type === "RUN" &&
      event.reply({ ok: false, error: new BusyError(`the ${context.name} actor is stopping`) }),
    admit: assign({ admitted: ({ context }) => context.admitted + 1 }),
    release: assign({ admitted: ({ context }) => context.admitted - 1 }),
    /** Runs the task on the pool, replies, then reports SETTLED (provided: it needs the pool). */
    launch: () => {
      throw new Error("programmer error: launch not provided");
    },
  },
}).createMachine({
  id: "worker",
  context: ({ input }) => ({ name: input.name, admitted: 0, admittedMax: input.admittedMax }),
  initial: "serving",
  states: {
    serving: {
      on: {
        RUN: [{ guard: "isFull", actions: "refuseBusy" }, { actions: ["admit", "launch"] }],
        SETTLED: { actions: "release" },
        STOP: "draining",
      },
    },
    draining: {
      always: { guard: "isIdle", target: "closing" },
      on: { RUN: { actions: "refuseStopping" }, SETTLED: { actions: "release" } },
    },
    closing: { invoke: { src: "closePool", onDone: "stopped", onError: "stopped" } },
    stopped: { type: "final" },
  },
});

/** The machine's effects on a real (or simulated) pool. */
export function workerEffects(pool: WorkerPool) {
  return {
    actions: {
      launch: ({ event, self }: { event: WorkerEvent; self: { send(event: WorkerEvent): void } }) => {
        if (event.type !== "RUN") return;
        pool.run(event.operation, event.input, event.transfer, { urgent: event.urgent }).then(
          (value) => event.reply({ ok: true, value }),
          (error: Error) => event.reply({ ok: false, error }),
        ).finally(() => self.send({ type: "SETTLED" }));
      },
    },
    actors: { closePool: fromPromise(() => pool.close()) },
  };
}
