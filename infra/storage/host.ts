/**
 * Hosts a storage node: its machine over a chunk store, request-reply on
 * `veil.store.<node>.put|get|has|list|delete|stat`, and a heartbeat on `veil.hb.storage.<node>`
 * with its state, bytes used, capacity, chunk count and operations in flight. Every request
 * is validated before the machine sees it; replies have the shape of command replies. Puts
 * and gets carry a storage ticket (`ticket`), which the node checks with the cluster's ticket
 * key: given to it, or asked of the servers.
 */
import { nativeSignatures } from "../signatures.ts";
import process from "node:process";
import { type Actor, createActor, type SnapshotFrom, toPromise, waitFor } from "xstate";
import type { Bus, ChunkStore, Clock, Logger } from "../../actors/ports.ts";
import { storageEffects } from "../../actors/storage-node/effects.ts";
import { storageNodeMachine } from "../../actors/storage-node/machine.ts";
import {
  bytes,
  failureReply,
  heartbeatSubject,
  integer,
  limits,
  object,
  optional,
  type StoreOperation,
  storeOperations,
  storeSubjectsOf,
  string,
  ticketBytes,
  UnavailableError,
  ValidationError,
} from "../../events/mod.ts";
import { chunkHashPattern } from "./disk-store.ts";
import { askServersForTicketKey } from "./ticket-key.ts";

const hash = string({ lengthMin: 64, lengthMax: 64, pattern: chunkHashPattern });
type StoreRequestData = {
  hash?: string;
  bytes?: Uint8Array;
  ticket?: Uint8Array;
  after?: string;
  limit?: number;
  idleMs?: number;
};
/** A missing ticket passes here, so the node can say what a put or get lacks rather than that a field is absent. */
const ticket = optional(ticketBytes);
const requests: Record<StoreOperation, { parse(value: unknown): StoreRequestData }> = {
  put: object({ hash, bytes: bytes({ lengthMax: limits.chunkBytes }), ticket }),
  get: object({ hash, ticket }),
  has: object({ hash }),
  list: object({ after: optional(hash), limit: integer({ min: 1, max: limits.chunkListPageMax }) }),
  /** `idleMs`: delete only a chunk nobody has put for this long (garbage collection). */
  delete: object({ hash, idleMs: optional(integer({ min: 0, max: limits.durationMsMax })) }),
  stat: object({}),
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

export function hostStorageNode(deps: {
  nodeId: string;
  bus: Bus;
  store: ChunkStore;
  clock: Clock;
  logger: Logger;
  capacityBytes: number;
  /** The cluster's ticket public key, when this process has the cluster key; without it, the node asks the servers. */
  ticketKey?: Uint8Array;
}): HostedStorageNode {
  const { nodeId, bus, store, clock, logger, capacityBytes, ticketKey } = deps;
  const learnTicketKey = (signal: AbortSignal) =>
    ticketKey ? Promise.resolve(ticketKey) : askServersForTicketKey({ bus, clock, logger }, signal);
  const actor = createActor(storageNodeMachine.provide(storageEffects(store, learnTicketKey, nativeSignatures)), {
    input: { nodeId, capacityBytes },
  });

  const subscription = bus.subscribe(storeSubjectsOf(nodeId), (message) => {
    const operation = message.subject.slice(message.subject.lastIndexOf(".") + 1) as StoreOperation;
    if (!storeOperations.includes(operation)) {
      return message.respond(failureReply(new ValidationError(`unknown store operation ${operation}`)));
    }
    let request: StoreRequestData;
    try {
      request = requests[operation].parse(message.data);
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
      memoryBytes: process.memoryUsage().rss,
      sentAt: clock.now(),
      bytesUsed: context.bytesUsed,
      capacityBytes: context.capacityBytes,
      chunks: context.chunks,
    });
  };
  const beating = setInterval(beat, limits.serverHeartbeatIntervalMs);
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

  const done = toPromise(actor).finally(() => {
    clearInterval(beating);
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
