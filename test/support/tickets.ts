/** Storage tickets as the test cluster's servers sign them, for tests that put and get chunks directly. */
import { signTicket } from "../../actors/storage-node/tickets.ts";
import { limits } from "../../events/mod.ts";
import { testTicketKeys } from "./identity.ts";

/** A put ticket for this chunk on `node`, good for the ticket lifetime (or until `expiresAt`). */
export function putTicket(node: string, chunk: { hash: string; bytes: Uint8Array }, expiresAt?: number): Uint8Array {
  return signTicket(testTicketKeys.secretKey, {
    op: "put",
    node,
    hashes: [chunk.hash],
    bytesMax: Math.max(1, chunk.bytes.byteLength),
    expiresAt: expiresAt ?? Date.now() + limits.ticketLifetimeMs,
  });
}

export function getTicket(node: string, hash: string): Uint8Array {
  return signTicket(testTicketKeys.secretKey, {
    op: "get",
    node,
    hashes: [hash],
    expiresAt: Date.now() + limits.ticketLifetimeMs,
  });
}

/** A chunk put on `node` with its ticket, as an upload puts it. */
export const ticketed = (node: string, chunk: { hash: string; bytes: Uint8Array }) => ({
  ...chunk,
  ticket: putTicket(node, chunk),
});
