/**
 * Storage tickets (DESIGN §7): a storage node stores or returns a chunk only for a request
 * that carries a ticket the cluster signed. A put ticket comes from the leader's placement,
 * a get ticket from `vault.get` (the owner) or `grant.view` (a grant's recipient). On the
 * wire a ticket is its fields as standard msgpack followed by a 64-byte Ed25519 signature.
 */
import { chunkHash } from "./image.ts";
import { limits } from "./limits.ts";
import { array, bytes, type Infer, integer, object, oneOf, optional, string } from "./schema.ts";

export const ticketOperations = ["put", "get"] as const;
export type TicketOperation = (typeof ticketOperations)[number];

export const ticketSignatureBytes = 64;

const nodeId = string({ lengthMin: 1, lengthMax: limits.subjectTokenLengthMax, pattern: /^[A-Za-z0-9_-]+$/ });

/** What a ticket allows: `op` of the chunks named by `hashes` on `node`, until `expiresAt` (epoch ms). */
export const storageTicket = object({
  op: oneOf(ticketOperations),
  node: nodeId,
  hashes: array(chunkHash, { lengthMin: 1, lengthMax: limits.ticketHashesMax }),
  /** Puts: the largest chunk a put may store with it (what placement counted against the node's room). */
  bytesMax: optional(integer({ min: 1, max: limits.chunkBytes })),
  expiresAt: integer({ min: 0 }),
});
export type StorageTicket = Infer<typeof storageTicket>;

/** A ticket as it travels: fields and signature, one opaque byte string to whoever carries it. */
export const ticketBytes = bytes({ lengthMin: ticketSignatureBytes + 1, lengthMax: limits.ticketBytesMax });

/** Where a ticket is needed: a reply's tickets, one or more per node. */
export const nodeTicket = object({ node: nodeId, ticket: ticketBytes });
export const nodeTickets = array(nodeTicket, { lengthMax: limits.ticketsPerReplyMax });
export type NodeTicket = Infer<typeof nodeTicket>;

/**
 * `cluster.keys`, served by every server in the clear: the public keys clients seal commands
 * to (`sealingKey`, with the fingerprint of the cluster key the log records) and storage
 * nodes check tickets with (`ticketKey`).
 */
export const clusterKeysReply = object({
  sealingKey: bytes({ lengthMin: 32, lengthMax: 32 }),
  fingerprint: bytes({ lengthMin: 16, lengthMax: 16 }),
  ticketKey: bytes({ lengthMin: 32, lengthMax: 32 }),
  /** The server's clock when it answered: clients seal commands with the cluster's time, not their own. */
  now: integer({ min: 0 }),
});

/** What `cluster.place` is asked to place: chunks by hash and size, all on the same nodes, one put ticket each. */
export const placementChunks = array(
  object({ hash: chunkHash, bytes: integer({ min: 1, max: limits.chunkBytes }) }),
  { lengthMin: 1, lengthMax: limits.ticketHashesMax },
);
