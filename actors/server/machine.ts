/**
 * The server actor. It joins the cluster (NodeJoined), then runs two regions side by side:
 * its projections (catching up, then live) and the Bully election. On STOP it resigns if it
 * leads, persists its projections and leaves (NodeLeft), so a graceful shutdown never
 * leaves half-written state.
 *
 * Election (Bully, with terms fenced by the log): a node elects when it starts, when the
 * leader goes silent, or when a lower node calls an election. Electing broadcasts
 * ELECTION; any ANSWER from a higher node means "wait for its COORDINATOR"; no answer
 * means "claim". Claiming appends LeaderElected{term + 1} with the leader aggregate's
 * expected sequence, so two nodes can never win the same term; a node whose claim loses
 * steps down. Messages only decide who tries to claim: safety comes from the log.
 *
 * Every effect is a named actor or action provided by the host (`machine.provide`), so the
 * same machine runs on NATS and in the simulator.
 */
import { assign, fromCallback, fromPromise, setup, stateIn } from "xstate";
import { limits } from "../../events/mod.ts";
import { compareNodeIds } from "./node-ids.ts";

export interface ServerInput {
  readonly nodeId: string;
}

export interface ServerContext {
  readonly nodeId: string;
  /** STOP arrived while the join was still on its way; leave once it has landed. */
  readonly stopRequested: boolean;
  /** The highest term this node knows of. */
  readonly term: number;
  /** Who leads `term`, when known. */
  readonly leader: string | undefined;
  /** Why the server failed or stopped uncleanly, for the host to report. */
  readonly problem?: string;
}

/** An election message, validated and addressed to this node (the host drops everything else). */
export interface PeerMessage {
  readonly from: string;
  readonly term: number;
}

export type ServerEvent =
  | { readonly type: "STOP" }
  | { readonly type: "PROJECTIONS_LIVE" }
  | { readonly type: "PROJECTIONS_FAILED"; readonly reason: string }
  | ({ readonly type: "ELECTION" | "ANSWER" | "COORDINATOR" | "ALIVE" | "RESIGN" } & PeerMessage);

export interface ServerOutput {
  readonly problem?: string;
}

type EffectInput = { readonly nodeId: string };

/** Every effect is told which node it acts for. */
const effectInput = ({ context }: { context: ServerContext }): EffectInput => ({ nodeId: context.nodeId });

function notProvidedError(name: string): Error {
  return new Error(`programmer error: the host did not provide the ${name} effect`);
}

const notProvidedAction = (name: string) => () => {
  throw notProvidedError(name);
};

const peer = (event: ServerEvent): PeerMessage => event as PeerMessage;

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
    /** Turns election messages for this node into events. */
    listen: fromCallback<ServerEvent, EffectInput>(() => {
      throw notProvidedError("listen");
    }),
    /** Appends LeaderElected{latest term + 1} against the leader aggregate's last sequence; resolves with the term. */
    claimLeadership: fromPromise<{ term: number }, EffectInput>(() =>
      Promise.reject(notProvidedError("claimLeadership"))
    ),
    /** What only the leader does (membership bookkeeping now; placement and repair later). */
    leaderDuties: fromCallback<ServerEvent, EffectInput & { term: number }>(() => {
      throw notProvidedError("leaderDuties");
    }),
    /** Stops following and snapshots every projection. */
    persistProjections: fromPromise<void, EffectInput>(() => Promise.reject(notProvidedError("persistProjections"))),
    /** Appends NodeLeft for this node. */
    announceLeave: fromPromise<void, EffectInput>(() => Promise.reject(notProvidedError("announceLeave"))),
  },
  delays: {
    answerTimeout: limits.answerTimeoutMs,
    coordinatorTimeout: limits.coordinatorTimeoutMs,
    leaderTimeout: limits.leaderTimeoutMs,
    aliveInterval: limits.leaderAliveIntervalMs,
  },
  guards: {
    isStopRequested: ({ context }) => context.stopRequested,
    isFromHigher: ({ context, event }) => compareNodeIds(peer(event).from, context.nodeId) > 0,
    isFromLower: ({ context, event }) => compareNodeIds(peer(event).from, context.nodeId) < 0,
    /** A leader claim at least as new as anything this node knows. */
    isCurrentTerm: ({ context, event }) => peer(event).term >= context.term,
    isNewerTerm: ({ context, event }) => peer(event).term > context.term,
    /** The leader this node follows, or anyone holding a newer term. */
    isLeaderOrNewer: ({ context, event }) =>
      (peer(event).from === context.leader && peer(event).term >= context.term) || peer(event).term > context.term,
    isLeading: stateIn({ running: { election: "leader" } }),
    isClaimOutdated: ({ context, event }) =>
      (event as unknown as { output: { term: number } }).output.term < context.term,
    /** The log records a newer term than the one this node leads (provided: it reads the projection). */
    isSupersededInLog: () => {
      throw notProvidedError("isSupersededInLog");
    },
    /** Bully: a higher node never follows a lower one; it takes over. */
    followsLowerNode: ({ context }) =>
      context.leader !== undefined && compareNodeIds(context.leader, context.nodeId) < 0,
  },
  actions: {
    requestStop: assign({ stopRequested: true }),
    adoptLeader: assign({ leader: ({ event }) => peer(event).from, term: ({ event }) => peer(event).term }),
    forgetLeader: assign({ leader: undefined }),
    becomeLeader: assign({
      leader: ({ context }) => context.nodeId,
      term: ({ event }) => (event as unknown as { output: { term: number } }).output.term,
    }),
    recordProblem: assign({
      problem: ({ event }) => {
        if (event.type === "PROJECTIONS_FAILED") return event.reason;
        const error = (event as { error?: unknown }).error;
        return error instanceof Error ? error.message : String(error);
      },
    }),
    // Messages to other servers; the host sends them over the bus.
    broadcastElection: notProvidedAction("broadcastElection"),
    sendAnswer: notProvidedAction("sendAnswer"),
    broadcastCoordinator: notProvidedAction("broadcastCoordinator"),
    broadcastAlive: notProvidedAction("broadcastAlive"),
    broadcastResign: notProvidedAction("broadcastResign"),
    /** Notes an election message that changed nothing (stale term, wrong state). */
    logIgnored: notProvidedAction("logIgnored"),
    /** Notes that a claim lost the race for its term. */
    logStepDown: notProvidedAction("logStepDown"),
    /** Notes that the log records a newer term than the one this node led. */
    logSuperseded: notProvidedAction("logSuperseded"),
    /** Takes the log's leader and term as this node's own knowledge (provided: it reads the projection). */
    adoptRecordedLeader: notProvidedAction("adoptRecordedLeader"),
  },
}).createMachine({
  id: "server",
  context: ({ input }) => ({ nodeId: input.nodeId, stopRequested: false, term: 0, leader: undefined }),
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
      type: "parallel",
      invoke: { src: "listen", input: effectInput },
      on: {
        STOP: [
          { guard: "isLeading", target: "stopping", actions: "broadcastResign" },
          { target: "stopping" },
        ],
        PROJECTIONS_FAILED: { target: "stopping", actions: "recordProblem" },
        // Reached only when no state below took the message.
        ELECTION: { actions: "logIgnored" },
        ANSWER: { actions: "logIgnored" },
        COORDINATOR: { actions: "logIgnored" },
        ALIVE: { actions: "logIgnored" },
        RESIGN: { actions: "logIgnored" },
      },
      states: {
        projections: {
          invoke: { src: "keepProjections", input: effectInput },
          initial: "catchingUp",
          states: {
            catchingUp: { on: { PROJECTIONS_LIVE: "live" } },
            /** Caught up with the log: the node is ready, and says so. */
            live: {},
          },
        },
        election: {
          // A starting node elects: a higher live node will answer, and a lower leader is taken over.
          initial: "electing",
          states: {
            electing: {
              entry: "broadcastElection",
              after: { answerTimeout: "claiming" },
              on: {
                ANSWER: { guard: "isFromHigher", target: "waitingForCoordinator" },
                COORDINATOR: { guard: "isCurrentTerm", target: "follower", actions: "adoptLeader" },
                ALIVE: { guard: "isNewerTerm", target: "follower", actions: "adoptLeader" },
                ELECTION: { guard: "isFromLower", actions: "sendAnswer" },
              },
            },
            waitingForCoordinator: {
              after: { coordinatorTimeout: "electing" },
              on: {
                COORDINATOR: { guard: "isCurrentTerm", target: "follower", actions: "adoptLeader" },
                ALIVE: { guard: "isNewerTerm", target: "follower", actions: "adoptLeader" },
                ELECTION: { guard: "isFromLower", actions: "sendAnswer" },
              },
            },
            claiming: {
              // The claim decides; messages meanwhile only teach this node newer terms.
              invoke: {
                src: "claimLeadership",
                input: effectInput,
                // A claim that lands after a newer term became known must not lead: it yields.
                onDone: [
                  { guard: "isClaimOutdated", target: "follower", actions: "logSuperseded" },
                  { target: "leader", actions: "becomeLeader" },
                ],
                // Lost the race: follow, keeping any leader learned while claiming.
                onError: { target: "follower", actions: "logStepDown" },
              },
              on: {
                ELECTION: { guard: "isFromLower", actions: "sendAnswer" },
                COORDINATOR: { guard: "isNewerTerm", actions: "adoptLeader" },
                ALIVE: { guard: "isNewerTerm", actions: "adoptLeader" },
              },
            },
            follower: {
              always: { guard: "followsLowerNode", target: "electing" },
              after: { leaderTimeout: { target: "electing", actions: "forgetLeader" } },
              on: {
                ALIVE: { guard: "isLeaderOrNewer", target: "follower", reenter: true, actions: "adoptLeader" },
                COORDINATOR: { guard: "isCurrentTerm", target: "follower", reenter: true, actions: "adoptLeader" },
                // Bully: answer a lower node and hold an election of one's own.
                ELECTION: { guard: "isFromLower", target: "electing", actions: "sendAnswer" },
                RESIGN: { guard: "isLeaderOrNewer", target: "electing", actions: "forgetLeader" },
              },
            },
            leader: {
              entry: "broadcastCoordinator",
              invoke: {
                src: "leaderDuties",
                input: ({ context }) => ({ nodeId: context.nodeId, term: context.term }),
              },
              initial: "serving",
              states: {
                serving: {
                  entry: "broadcastAlive",
                  after: {
                    aliveInterval: [
                      // A newer leader may have won while its messages missed us: stop leading a
                      // term the log has moved past and follow the log's leader; if that one is
                      // gone, the follower's timeout starts an election.
                      {
                        guard: "isSupersededInLog",
                        target: "#server.running.election.follower",
                        actions: ["logSuperseded", "adoptRecordedLeader"],
                      },
                      { target: "serving", reenter: true },
                    ],
                  },
                },
              },
              on: {
                // Someone holds a newer term (the log fenced it): this node no longer leads.
                COORDINATOR: { guard: "isNewerTerm", target: "follower", actions: "adoptLeader" },
                ALIVE: { guard: "isNewerTerm", target: "follower", actions: "adoptLeader" },
                // A lower node is electing: tell it this node is alive and leads.
                ELECTION: { guard: "isFromLower", actions: ["sendAnswer", "broadcastCoordinator"] },
              },
            },
          },
        },
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
