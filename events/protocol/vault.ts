/** What the vault's commands answer, checked by the client before it trusts a field. */
import { chunkHash, imageId, legacyMeta, manifestShape, objectName } from "../image.ts";
import { limits } from "../limits.ts";
import { pageCursor } from "../paging.ts";
import { array, boolean, bytes, type Infer, integer, object, oneOf, optional, string } from "../schema.ts";
import { authenticated } from "./accounts.ts";
import { nodeTickets, placementChunks, ticketBytes } from "../tickets.ts";
import { username } from "../user.ts";

/** What `vault.store` answers: where the object now stands. */
const storedObject = {
  image: imageId,
  bytes: integer({ min: 0 }),
  storedAt: integer({ min: 0 }),
  replicas: integer({ min: 1, max: limits.replicasMax }),
  chunks: integer({ min: 0 }),
};
export const vaultStoreReply = object(storedObject);

/**
 * A stored object as `vault.list` and `vault.remove` describe it: what the servers can read
 * of it (its name and type are sealed in `meta`, for the owner to open).
 */
export const storedSummary = object({
  ...storedObject,
  keyWrapped: bytes({ lengthMin: 1, lengthMax: 256 }),
  meta: optional(bytes({ lengthMin: 1, lengthMax: limits.objectMetaSealedBytesMax })),
  legacy: optional(legacyMeta),
});
export type StoredSummary = Infer<typeof storedSummary>;

/** One page of `vault.list`. */
export const vaultListReply = object({
  files: array(storedSummary, { lengthMax: limits.listPageMax }),
  next: optional(pageCursor),
});

export * from "./cluster.ts";
export * from "./store.ts";

/** `vault.get`: the owner's manifest, with get tickets for its chunks. */
export const vaultGetReply = object({
  ...manifestShape,
  storedAt: integer({ min: 0 }),
  discoverable: optional(boolean()),
  shownName: optional(objectName),
  tickets: nodeTickets,
});
export type VaultGetReply = Infer<typeof vaultGetReply>;

const nodeToken = string({ lengthMin: 1, lengthMax: limits.subjectTokenLengthMax, pattern: /^[A-Za-z0-9_-]+$/ });

/** How the leader chooses storage nodes for a placement (actors/server/load-balancer.ts). */
export const placementPolicies = ["least-loaded", "round-robin"] as const;

/** `cluster.place`: chunks to place together, on `replicas` nodes; `user` is set by the server that checked the session. */
export const placeRequest = object({
  /** Whose quota it counts against: set by the server that checked the user's session. */
  user: optional(username),
  /** The chunks to place, all on the same nodes: each node chosen gets a put ticket for them. */
  chunks: placementChunks,
  replicas: integer({ min: 1, max: limits.replicasMax }),
  policy: optional(oneOf(placementPolicies)),
  /** Nodes not to place on: those that hold the chunk already, or just failed to take it. */
  exclude: optional(array(nodeToken, { lengthMax: 2 * limits.replicasMax })),
});

/** `cluster.place`: the nodes chosen, each with the put ticket that lets the chunks onto it. */
export const placeReply = object({
  nodes: array(nodeToken, { lengthMax: limits.replicasMax }),
  tickets: nodeTickets,
});

/** Where a listing page ends: the last object's time and id (objects are listed oldest first). */
const cursor = string({ lengthMin: 34, lengthMax: 64, pattern: /^\d{1,16}:[0-9a-f]{32}$/ });
/** What the vault's commands take (vault.store takes its manifest as the vault decider checks it). */
export const vaultRequests = {
  plain: object(authenticated),
  list: object({
    ...authenticated,
    after: optional(cursor),
    limit: optional(integer({ min: 1, max: limits.listPageMax })),
  }),
  get: object({ ...authenticated, image: imageId }),
  /** What a failed upload put and wants taken back, each with the put ticket it was put under. */
  abandon: object({
    ...authenticated,
    chunks: array(object({ hash: chunkHash, node: nodeToken, ticket: ticketBytes }), {
      lengthMin: 1,
      lengthMax: limits.abandonChunksMax,
    }),
  }),
  damaged: object({
    ...authenticated,
    image: imageId,
    hash: chunkHash,
    node: nodeToken,
  }),
};
