/**
 * The server actor. For now it joins the cluster (NodeJoined), keeps the projections live
 * while it runs, and on STOP persists them and leaves (NodeLeft), so a graceful shutdown
 * never leaves half-written state. Election and command serving join this machine in the
 * cluster issue. Every effect is a named actor provided by the host (`machine.provide`),
 * so the same machine runs on NATS and in the simulator.
 */
import { assign, fromCallback, fromPromise, setup } from "xstate";

export interface ServerInput {
  readonly nodeId: string;
}

export interface ServerContext {
  readonly nodeId: string;
  /** STOP arrived while the join was still on its way; leave once it has landed. */
  readonly stopRequested: boolean;
  /** Why the server failed or stopped uncleanly, for the host to report. */
  readonly problem?: string;
}

export type ServerEvent =
  | { readonly type: "STOP" }
  | { readonly type: "PROJECTIONS_LIVE" }
  | { readonly type: "PROJECTIONS_FAILED"; readonly reason: string };

export interface ServerOutput {
  readonly problem?: string;
}

type EffectInput = { readonly nodeId: string };

/** Every effect is told which node it acts for. */
const effectInput = ({ context }: { context: ServerContext }): EffectInput => ({ nodeId: context.nodeId });

function notProvidedError(name: string): Error {
  return new Error(`programmer error: the host did not provide the ${name} effect`);
}

export const serverMachine = setup({
  types: {
    input: {} as ServerInput,
    context: {} as ServerContext,
    events: {} as ServerEvent,
    output: {} as ServerOutput,
  },
  actors: {
    /** Appends NodeJoined for this node. */
    announceJoin: fromPromise<void, EffectInput>(() => Promise.reject(notProvidedError("announceJoin"))),
    /** Keeps every projection live: PROJECTIONS_LIVE once caught up, PROJECTIONS_FAILED if following stops. */
    keepProjections: fromCallback<ServerEvent, EffectInput>(() => {
      throw notProvidedError("keepProjections");
    }),
    /** Stops following and snapshots every projection. */
    persistProjections: fromPromise<void, EffectInput>(() => Promise.reject(notProvidedError("persistProjections"))),
    /** Appends NodeLeft for this node. */
    announceLeave: fromPromise<void, EffectInput>(() => Promise.reject(notProvidedError("announceLeave"))),
  },
  guards: {
    isStopRequested: ({ context }) => context.stopRequested,
  },
  actions: {
    requestStop: assign({ stopRequested: true }),
    recordProblem: assign({
      problem: ({ event }) => {
        if (event.type === "PROJECTIONS_FAILED") return event.reason;
        const error = (event as { error?: unknown }).error;
        return error instanceof Error ? error.message : String(error);
      },
    }),
  },
}).createMachine({
  id: "server",
  context: ({ input }) => ({ nodeId: input.nodeId, stopRequested: false }),
  output: ({ context }) => ({ problem: context.problem }),
  initial: "starting",
  states: {
    starting: {
      invoke: {
        src: "announceJoin",
        input: effectInput,
        onDone: [{ guard: "isStopRequested", target: "stopping" }, { target: "running" }],
        onError: { target: "failed", actions: "recordProblem" },
      },
      // The join is on its way to the log: wait for it, so NodeLeft can never precede it.
      on: { STOP: { actions: "requestStop" } },
    },
    running: {
      invoke: { src: "keepProjections", input: effectInput },
      initial: "catchingUp",
      states: {
        catchingUp: { on: { PROJECTIONS_LIVE: "live" } },
        /** Caught up with the log: the node is ready, and says so. */
        live: {},
      },
      on: {
        STOP: "stopping",
        PROJECTIONS_FAILED: { target: "stopping", actions: "recordProblem" },
      },
    },
    stopping: {
      initial: "persisting",
      states: {
        persisting: {
          invoke: {
            src: "persistProjections",
            input: effectInput,
            onDone: "leaving",
            onError: { target: "leaving", actions: "recordProblem" },
          },
        },
        leaving: {
          invoke: {
            src: "announceLeave",
            input: effectInput,
            onDone: "#server.stopped",
            onError: { target: "#server.stopped", actions: "recordProblem" },
          },
        },
      },
    },
    stopped: { type: "final" },
    failed: { type: "final" },
  },
});
