/**
 * What a storage node serves, each operation on `veil.store.<node>.<operation>`: its request
 * and its reply, both checked where they arrive (the node checks requests before its machine
 * sees them; callers check replies before they trust them). Puts and gets carry a storage
 * ticket (events/tickets.ts).
 */
import { chunkHash } from "../image.ts";
import { limits } from "../limits.ts";
import { array, boolean, bytes, type Infer, integer, object, optional, string } from "../schema.ts";
import { subjectToken } from "../subjects.ts";
import { ticketBytes } from "../tickets.ts";

export const storeOperations = ["put", "get", "has", "list", "delete", "stat"] as const;
export type StoreOperation = (typeof storeOperations)[number];
export const storeSubject = (node: string, operation: StoreOperation) =>
  `veil.store.${subjectToken(node, "storage node id")}.${operation}`;
/** Every operation of one node: what it subscribes to. */
export const storeSubjectsOf = (node: string) => `veil.store.${subjectToken(node, "storage node id")}.*`;

/** A missing ticket passes here, so the node can say what a put or get lacks rather than that a field is absent. */
const ticket = optional(ticketBytes);

export const storeRequests = {
  put: object({ hash: chunkHash, bytes: bytes({ lengthMax: limits.chunkBytes }), ticket }),
  get: object({ hash: chunkHash, ticket }),
  has: object({ hash: chunkHash }),
  list: object({ after: optional(chunkHash), limit: integer({ min: 1, max: limits.chunkListPageMax }) }),
  /** `idleMs`: delete only a chunk nobody has put for this long (garbage collection). */
  delete: object({ hash: chunkHash, idleMs: optional(integer({ min: 0, max: limits.durationMsMax })) }),
  stat: object({}),
};
export type StoreRequest<Operation extends StoreOperation> = Infer<(typeof storeRequests)[Operation]>;

const count = integer({ min: 0 });

export const storeReplies = {
  /** `stored`: false when the node already held the chunk (a put is idempotent). */
  put: object({ stored: boolean() }),
  get: bytes({ lengthMin: 1, lengthMax: limits.chunkBytes }),
  has: boolean(),
  /** One page of what the node holds, in hash order, with when each was last put. */
  list: array(object({ hash: chunkHash, bytes: count, touchedAtMs: count }), { lengthMax: limits.chunkListPageMax }),
  delete: object({ freed: count }),
  stat: object({
    node: string({ lengthMin: 1, lengthMax: limits.subjectTokenLengthMax }),
    chunks: count,
    bytesUsed: count,
    capacityBytes: count,
    inFlight: count,
  }),
};
export type StoreReply<Operation extends StoreOperation> = Infer<(typeof storeReplies)[Operation]>;
