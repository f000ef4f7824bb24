/**
 * A storage node. It starts by scanning its store (`starting`), then serves chunk requests:
 * `ready` with nothing in flight, `running` while it works, `waiting` when it holds as many
 * operations as it may (new ones are refused as busy at once, so memory stays bounded). A
 * put that would take it past its capacity is refused as full. On STOP it finishes what it
 * admitted (`draining`) and ends `stopped`. The store is the injected effect: the disk in
 * production, memory in the simulator.
 *
 * Puts and gets need a ticket the cluster signed (tickets.ts), checked against the cluster's
 * ticket key, which the node learns once from its start (`learnTicketKey`: given by the
 * process, or asked of the servers). Until it has the key it refuses puts and gets as
 * unavailable, so callers retry; if it never learns it, it stops with that problem.
 */
import { assign, fromPromise, setup } from "xstate";
import { BusyError, limits, type StoreOperation, UnavailableError, VeilError } from "../../events/mod.ts";

export type StoreResult = { readonly ok: true; readonly value: unknown } | {
  readonly ok: false;
  readonly error: Error;
};

/** What an operation changed: the executor reports it, the machine keeps the totals. */
export interface StoreChange {
  readonly bytes: number;
  readonly chunks: number;
}

export type StorageEvent =
  | {
    readonly type: "REQUEST";
    /** `verify`: the node's own scrub reading a chunk back (never from the wire: the host admits only storeOperations). */
    readonly operation: StoreOperation | "verify";
    readonly hash?: string;
    readonly bytes?: Uint8Array;
    /** Puts and gets: the ticket that allows them (checked before anything is read or written). */
    readonly ticket?: Uint8Array;
    /** When the request came, by the host's clock: a put's touch time, and the time tickets are checked at. */
    readonly atMs?: number;
    /** A delete that keeps the chunk if it was touched at or after this time (garbage collection's guard). */
    readonly untouchedSinceMs?: number;
    /** A list's page: the chunks after this hash, at most this many. */
    readonly after?: string;
    readonly limit?: number;
    readonly reply: (result: StoreResult) => void;
  }
  | { readonly type: "SETTLED"; readonly change: StoreChange; readonly reservedBytes: number }
  | { readonly type: "STOP" };

export interface StorageContext {
  readonly nodeId: string;
  readonly capacityBytes: number;
  readonly bytesUsed: number;
  readonly chunks: number;
  readonly inFlight: number;
  readonly inFlightMax: number;
  /** Bytes of puts admitted and not yet settled, counted against the capacity. */
  readonly reservedBytes: number;
  /** The cluster's public key for storage tickets, once learned. */
  readonly ticketKey?: Uint8Array;
  /** Why the node stopped on its own (its store could not be read), if it did. */
  readonly problem?: string;
}

/** A node that cannot take a chunk for want of room: placement should go elsewhere. */
export class StorageFullError extends VeilError {
  constructor(message: string) {
    super("conflict", message);
    this.name = "StorageFullError";
  }
}

type Request = Extract<StorageEvent, { type: "REQUEST" }>;
const needsTicket = (event: StorageEvent) =>
  event.type === "REQUEST" && (event.operation === "put" || event.operation === "get");

export const putBytes = (
  event: StorageEvent,
) => (event.type === "REQUEST" && event.operation === "put" ? event.bytes?.byteLength ?? 0 : 0);

export const storageNodeMachine = setup({
  types: {
    input: {} as { nodeId: string; capacityBytes: number; inFlightMax?: number },
    context: {} as StorageContext,
    events: {} as StorageEvent,
    output: {} as { problem?: string },
  },
  actors: {
    scanStore: fromPromise<{ chunks: number; bytes: number }>(() =>
      Promise.reject(new Error("programmer error: scanStore not provided"))
    ),
    learnTicketKey: fromPromise<Uint8Array>(() =>
      Promise.reject(new Error("programmer error: learnTicketKey not provided"))
    ),
  },
  guards: {
    isSaturated: ({ context }) => context.inFlight >= context.inFlightMax,
    lacksTicketKey: ({ context, event }) => needsTicket(event) && context.ticketKey === undefined,
    wouldOverflow: ({ context, event }) =>
      context.bytesUsed + context.reservedBytes + putBytes(event) > context.capacityBytes,
    hasWork: ({ context }) => context.inFlight > 0,
    isIdle: ({ context }) => context.inFlight === 0,
  },
  actions: {
    refuseBusy: ({ context, event }) =>
      event.type === "REQUEST" &&
      event.reply({
        ok: false,
        error: new BusyError(`storage node ${context.nodeId} is busy (${context.inFlight} operations); retry`),
      }),
    refuseFull: ({ context, event }) =>
      event.type === "REQUEST" &&
      event.reply({
        ok: false,
        error: new StorageFullError(
          `storage node ${context.nodeId} is full (${context.bytesUsed} of ${context.capacityBytes} bytes used)`,
        ),
      }),
    refuseStarting: ({ context, event }) =>
      event.type === "REQUEST" &&
      event.reply({
        ok: false,
        error: new BusyError(`storage node ${context.nodeId} is starting (scanning its store); retry`),
      }),
    refuseKeyless: ({ context, event }) =>
      event.type === "REQUEST" &&
      event.reply({
        ok: false,
        error: new UnavailableError(
          `storage node ${context.nodeId} cannot check tickets yet: no server has told it the cluster's ` +
            `ticket key (cluster.keys); retry`,
        ),
      }),
    refuseStopping: ({ context, event }) =>
      event.type === "REQUEST" &&
      event.reply({ ok: false, error: new BusyError(`storage node ${context.nodeId} is stopping`) }),
    answerStat: ({ context, event }) =>
      event.type === "REQUEST" &&
      event.reply({
        ok: true,
        value: {
          node: context.nodeId,
          chunks: context.chunks,
          bytesUsed: context.bytesUsed,
          capacityBytes: context.capacityBytes,
          inFlight: context.inFlight,
        },
      }),
    admit: assign({
      inFlight: ({ context }) => context.inFlight + 1,
      reservedBytes: ({ context, event }) => context.reservedBytes + putBytes(event),
    }),
    settle: assign(({ context, event }) => {
      if (event.type !== "SETTLED") return {};
      return {
        inFlight: context.inFlight - 1,
        reservedBytes: context.reservedBytes - event.reservedBytes,
        bytesUsed: Math.max(0, context.bytesUsed + event.change.bytes),
        chunks: Math.max(0, context.chunks + event.change.chunks),
      };
    }),
    takeInventory: assign((_, inventory: { chunks: number; bytes: number }) => ({
      chunks: inventory.chunks,
      bytesUsed: inventory.bytes,
    })),
    /** Runs the operation on the store, replies, then reports SETTLED (provided: it needs the store). */
    perform: () => {
      throw new Error("programmer error: perform not provided");
    },
  },
}).createMachine({
  id: "storage-node",
  context: ({ input }) => ({
    nodeId: input.nodeId,
    capacityBytes: input.capacityBytes,
    bytesUsed: 0,
    chunks: 0,
    inFlight: 0,
    inFlightMax: input.inFlightMax ?? limits.storageInFlightMax,
    reservedBytes: 0,
  }),
  initial: "starting",
  // Learned while the node starts and serves; a node that cannot learn it is of no use for puts and gets.
  invoke: {
    src: "learnTicketKey",
    onDone: { actions: assign({ ticketKey: ({ event }) => event.output }) },
    onError: {
      target: ".draining",
      actions: assign({ problem: ({ event }) => `no ticket key: ${(event.error as Error).message}` }),
    },
  },
  states: {
    starting: {
      invoke: {
        src: "scanStore",
        onDone: { target: "serving", actions: { type: "takeInventory", params: ({ event }) => event.output } },
        onError: {
          target: "stopped",
          actions: assign({
            problem: ({ event }) => `the store could not be scanned: ${(event.error as Error).message}`,
          }),
        },
      },
      on: { REQUEST: { actions: "refuseStarting" }, STOP: "stopped" },
    },
    serving: {
      initial: "ready",
      on: {
        REQUEST: [
          { guard: ({ event }) => event.operation === "stat", actions: "answerStat" },
          { guard: "lacksTicketKey", actions: "refuseKeyless" },
          { guard: "isSaturated", actions: "refuseBusy" },
          { guard: "wouldOverflow", actions: "refuseFull" },
          { actions: ["admit", "perform"] },
        ],
        SETTLED: { actions: "settle" },
        STOP: "draining",
      },
      states: {
        ready: { always: { guard: "hasWork", target: "running" } },
        running: { always: [{ guard: "isSaturated", target: "waiting" }, { guard: "isIdle", target: "ready" }] },
        waiting: { always: { guard: ({ context }) => context.inFlight < context.inFlightMax, target: "running" } },
      },
    },
    draining: {
      always: { guard: "isIdle", target: "stopped" },
      on: {
        REQUEST: [{ guard: ({ event }) => event.operation === "stat", actions: "answerStat" }, {
          actions: "refuseStopping",
        }],
        SETTLED: { actions: "settle" },
      },
    },
    stopped: { type: "final" },
  },
  output: ({ context }) => (context.problem ? { problem: context.problem } : {}),
});

export type { Request as StorageRequest };
