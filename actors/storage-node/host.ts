/**
 * Hosts a storage node: its machine over a chunk store, request-reply on
 * `veil.store.<node>.put|get|has|list|delete|stat`, and a heartbeat on `veil.hb.storage.<node>`
 * with its state, bytes used, capacity, chunk count and operations in flight. Every request
 * is validated before the machine sees it; replies have the shape of command replies. Puts
 * and gets carry a storage ticket (`ticket`), which the node checks with the cluster's ticket
 * key: given to it, or asked of the servers. In the background the node scrubs its store: a
 * few chunks each round are read back and checked, and a damaged one is removed, which the
 * leader's audit then finds and repair puts back.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { type Actor, createActor, type SnapshotFrom, toPromise, waitFor } from "xstate";
import type { Bus, ChunkEntry, ChunkHasher, ChunkStore, Clock, Logger, Signatures, Timers } from "../ports.ts";
import {
  BusyError,
  failureReply,
  heartbeatSubject,
  limits,
  type StoreOperation,
  storeOperations,
  storeRequests,
  storeSubjectsOf,
  UnavailableError,
  ValidationError,
} from "../../events/mod.ts";
import type { CommandSender } from "../peer/commands.ts";
import { roundsMachine } from "../rounds.ts";
import { storageEffects } from "./effects.ts";
import { storageNodeMachine } from "./machine.ts";
import { askServersForTicketKey } from "./ticket-key.ts";

type StoreRequestData = {
  hash?: string;
  bytes?: Uint8Array;
  ticket?: Uint8Array;
  after?: string;
  limit?: number;
  idleMs?: number;
};

export interface HostedStorageNode {
  readonly actor: Actor<typeof storageNodeMachine>;
  /** Resolves once the node has scanned its store, knows the ticket key and serves (false if it stopped first). */
  readonly ready: Promise<boolean>;
  readonly done: Promise<{ problem?: string }>;
}

function describeState(snapshot: SnapshotFrom<typeof storageNodeMachine>): string {
  if (snapshot.status !== "active") return "stopped";
  const value = snapshot.value;
  return typeof value === "string" ? value : value.serving;
}

export interface StorageNodeDeps {
  readonly nodeId: string;
  readonly bus: Bus;
  /** Commands to the servers over the same bus (only `cluster.keys`, for a node without the ticket key). */
  readonly send: CommandSender;
  readonly store: ChunkStore;
  readonly clock: Clock;
  /** The heartbeat's interval runs on these: the system's, or the simulator's. */
  readonly timers: Timers;
  readonly logger: Logger;
  readonly signatures: Signatures;
  /** How a put's bytes are checked against its name (Web Crypto's SHA-256 unless given). */
  readonly chunkHash?: ChunkHasher;
  readonly capacityBytes: number;
  /** What the heartbeat reports as this process's memory. */
  readonly memoryBytes: () => number;
  /** The cluster's ticket public key, when this process has the cluster key; without it, the node asks the servers. */
  readonly ticketKey?: Uint8Array;
  /** How often the scrub reads back `limits.scrubChunksPerRound` chunks (limits.scrubIntervalMs unless given). */
  readonly scrubIntervalMs?: number;
}

export function startStorageNode(deps: StorageNodeDeps): HostedStorageNode {
  const { nodeId, bus, store, clock, timers, logger, capacityBytes, ticketKey } = deps;
  const learnTicketKey = (signal: AbortSignal) =>
    ticketKey ? Promise.resolve(ticketKey) : askServersForTicketKey({ send: deps.send, clock, timers, logger }, signal);
  const actor = createActor(
    storageNodeMachine.provide(storageEffects(store, learnTicketKey, deps.signatures, deps.chunkHash)),
    {
      input: { nodeId, capacityBytes },
    },
  );

  const subscription = bus.subscribe(storeSubjectsOf(nodeId), (message) => {
    const operation = message.subject.slice(message.subject.lastIndexOf(".") + 1) as StoreOperation;
    if (!storeOperations.includes(operation)) {
      return message.respond(failureReply(new ValidationError(`unknown store operation ${operation}`)));
    }
    let request: StoreRequestData;
    try {
      request = storeRequests[operation].parse(message.data) as StoreRequestData;
    } catch (error) {
      return message.respond(failureReply(error));
    }
    if (actor.getSnapshot().status !== "active") {
      return message.respond(failureReply(new UnavailableError(`storage node ${nodeId} has stopped`)));
    }
    const { idleMs, ...rest } = request;
    actor.send({
      type: "REQUEST",
      operation,
      ...rest,
      atMs: clock.now(),
      ...(idleMs === undefined ? {} : { untouchedSinceMs: clock.now() - idleMs }),
      reply: (result) => message.respond(result.ok ? { ok: true, value: result.value } : failureReply(result.error)),
    });
  });

  const beat = () => {
    const snapshot = actor.getSnapshot();
    const context = snapshot.context;
    bus.publish(heartbeatSubject("storage", nodeId), {
      node: nodeId,
      role: "storage",
      state: describeState(snapshot),
      term: 0,
      inFlight: context.inFlight,
      memoryBytes: deps.memoryBytes(),
      sentAt: clock.now(),
      bytesUsed: context.bytesUsed,
      capacityBytes: context.capacityBytes,
      chunks: context.chunks,
    });
  };
  /** The node's own request to its machine (the scrub's), answered as a value or a typed error. */
  const ask = (operation: StoreOperation | "verify", request: StoreRequestData) =>
    new Promise<unknown>((resolve, reject) => {
      if (actor.getSnapshot().status !== "active") return reject(new UnavailableError(`${nodeId} has stopped`));
      actor.send({
        type: "REQUEST",
        operation,
        ...request,
        atMs: clock.now(),
        reply: (result) => (result.ok ? resolve(result.value) : reject(result.error)),
      });
    });
  // Each run starts its pass somewhere else (a node restarting more often than a pass takes
  // would otherwise only ever scrub the start of the hash space).
  let scrubbed: string | undefined = bytesToHex(sha256(new TextEncoder().encode(`${nodeId}:${clock.now()}`)));
  const scrub = async () => {
    const page = await ask("list", {
      ...(scrubbed ? { after: scrubbed } : {}),
      limit: limits.scrubChunksPerRound,
    }) as ChunkEntry[];
    // Round and round the store: after the last page, from the start again.
    scrubbed = page.length < limits.scrubChunksPerRound ? undefined : page.at(-1)!.hash;
    for (const entry of page) {
      const { damaged } = await ask("verify", { hash: entry.hash }) as { damaged: boolean };
      if (damaged) logger.warn("scrub found a damaged chunk; removed for repair", { chunk: entry.hash });
    }
  };
  // A beat or a scrub that fails (a connection closing, a busy node) is reported, and the duty goes on.
  const beating = createActor(
    roundsMachine(
      [
        { name: "heartbeat", intervalMs: limits.serverHeartbeatIntervalMs, round: () => Promise.resolve(beat()) },
        { name: "scrub", intervalMs: deps.scrubIntervalMs ?? limits.scrubIntervalMs, round: scrub },
      ],
      // A busy or starting node skips a scrub round: that is no failure worth a warning.
      (duty, error) =>
        error instanceof BusyError
          ? logger.debug(`${duty} skipped`, { reason: error.message })
          : logger.warn(`${duty} failed`, { reason: error.message }),
    ),
    { clock: timers },
  );
  // Beat at once when the state changes, so placement sees a node that is waiting or back.
  let lastState = "";
  actor.subscribe((snapshot) => {
    const state = describeState(snapshot);
    if (state === lastState || snapshot.status !== "active") return;
    if (lastState === "starting") {
      logger.info("storage node serving", { chunks: snapshot.context.chunks, bytes: snapshot.context.bytesUsed });
    }
    lastState = state;
    beat();
  });
  actor.start();
  beating.start();

  const done = toPromise(actor).finally(() => {
    beating.stop();
    subscription.unsubscribe();
    try {
      beat(); // The last word: stopped.
    } catch (error) {
      logger.debug("last heartbeat not sent", { reason: (error as Error).message });
    }
  });
  const ready = waitFor(
    actor,
    (snapshot) =>
      (snapshot.matches("serving") && snapshot.context.ticketKey !== undefined) || snapshot.status === "done",
    { timeout: Infinity },
  ).then((snapshot) => snapshot.status !== "done");
  return { actor, ready, done };
}
