/** What the vault's commands answer, checked by the client before it trusts a field. */
import { imageId, legacyMeta, manifestShape, objectName } from "../image.ts";
import { limits } from "../limits.ts";
import { pageCursor } from "../paging.ts";
import { array, boolean, bytes, type Infer, integer, object, optional, string } from "../schema.ts";
import { nodeTickets } from "../tickets.ts";

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

/** `cluster.place`: the nodes chosen, each with the put ticket that lets the chunks onto it. */
export const placeReply = object({
  nodes: array(string({ lengthMin: 1, lengthMax: limits.subjectTokenLengthMax }), { lengthMax: limits.replicasMax }),
  tickets: nodeTickets,
});
