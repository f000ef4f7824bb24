/**
 * Storage tickets: signed, short-lived permissions to put or get named chunks on one storage
 * node (DESIGN §7). Servers sign them with an Ed25519 key derived from the cluster key;
 * storage nodes hold only the public key, so a node (or anyone who reads one) can check a
 * ticket but never make one. A ticket names its chunks by hash, so it cannot be stretched to
 * other chunks, and it expires, so one that leaks is soon worthless.
 */
import { equalBytes } from "@noble/curves/utils.js";
import { bytesToHex, concatBytes } from "@noble/hashes/utils.js";
import {
  decodeMessage,
  encodeMessage,
  ForbiddenError,
  limits,
  type NodeTicket,
  type StorageTicket,
  storageTicket,
  type TicketOperation,
  ticketSignatureBytes,
} from "../../events/mod.ts";
import { deriveSubkey, portableSignatures } from "../crypto/mod.ts";
import type { Clock, Signatures } from "../ports.ts";

export interface TicketKeys {
  /** Only servers hold it (it comes from the cluster key). */
  readonly secretKey: Uint8Array;
  /** What storage nodes check tickets with; `cluster.keys` hands it out. */
  readonly publicKey: Uint8Array;
}

export const ticketPublicKeyBytes = 32;

/** A domain label ahead of the fields: a signature made for a ticket verifies as nothing else. */
const signedPrefix = new TextEncoder().encode("veil/v1/storage-ticket\0");

export function ticketKeys(clusterKey: Uint8Array): TicketKeys {
  const secretKey = deriveSubkey(clusterKey, "storage-ticket");
  return { secretKey, publicKey: portableSignatures.publicKeyOf(secretKey) };
}

export function signTicket(
  secretKey: Uint8Array,
  ticket: StorageTicket,
  signatures: Signatures = portableSignatures,
): Uint8Array {
  const fields = encodeMessage(storageTicket.parse(ticket));
  return concatBytes(fields, signatures.sign(concatBytes(signedPrefix, fields), secretKey));
}

/** The fields of a ticket, unchecked: for a carrier finding which of its tickets names a chunk. */
export function readTicket(bytes: Uint8Array): StorageTicket {
  try {
    return storageTicket.parse(decodeMessage(bytes.subarray(0, bytes.byteLength - ticketSignatureBytes)));
  } catch (cause) {
    throw new ForbiddenError(`the storage ticket is malformed: ${(cause as Error).message}`, { cause });
  }
}

function checkSignature(publicKey: Uint8Array, bytes: Uint8Array, signatures: Signatures): void {
  if (bytes.byteLength <= ticketSignatureBytes || bytes.byteLength > limits.ticketBytesMax) {
    throw new ForbiddenError(`a storage ticket is ${ticketSignatureBytes + 1}..${limits.ticketBytesMax} bytes`);
  }
  const fields = bytes.subarray(0, bytes.byteLength - ticketSignatureBytes);
  const signature = bytes.subarray(bytes.byteLength - ticketSignatureBytes);
  if (!signatures.verify(signature, concatBytes(signedPrefix, fields), publicKey)) {
    throw new ForbiddenError("the storage ticket's signature is not the cluster's (forged or damaged)");
  }
}

/** What holds for a ticket wherever it is used: this node's, and not expired by this node's clock. */
function checkScope(ticket: StorageTicket, where: { node: string; now: number }): StorageTicket {
  if (ticket.node !== where.node) {
    throw new ForbiddenError(`the storage ticket is for node ${ticket.node}, not ${where.node}`);
  }
  if (where.now > ticket.expiresAt) {
    throw new ForbiddenError(
      `the storage ticket expired ${where.now - ticket.expiresAt} ms ago; ask for a new one (place or vault.get)`,
    );
  }
  return ticket;
}

/** A ticket checked: the cluster's signature, this node's, not expired. Throws ForbiddenError otherwise. */
export function verifyTicket(
  publicKey: Uint8Array,
  bytes: Uint8Array,
  where: { node: string; now: number },
  signatures: Signatures = portableSignatures,
): StorageTicket {
  checkSignature(publicKey, bytes, signatures);
  return checkScope(readTicket(bytes), where);
}

/** Whether a verified ticket covers this request: its operation, its chunk, and (puts) its size. */
export function checkTicketAllows(
  ticket: StorageTicket,
  request: { op: TicketOperation; hash: string; bytes?: number },
): void {
  if (ticket.op !== request.op) {
    throw new ForbiddenError(`the storage ticket is for a ${ticket.op}, not a ${request.op}`);
  }
  if (!ticket.hashes.includes(request.hash)) {
    throw new ForbiddenError(`the storage ticket does not name chunk ${request.hash}`);
  }
  if (request.op === "put") {
    const bytesMax = ticket.bytesMax ?? 0;
    if ((request.bytes ?? 0) > bytesMax) {
      throw new ForbiddenError(
        `the put ticket allows chunks of up to ${bytesMax} bytes; this one has ${request.bytes}`,
      );
    }
  }
}

/**
 * A storage node's checker: verifyTicket, with the signatures it verified remembered (a
 * bounded number, the oldest forgotten first), since a download sends its node's ticket with
 * every chunk and an Ed25519 verification costs about as much as hashing the chunk.
 */
export function ticketVerifier(
  publicKey: Uint8Array,
  options: { cacheMax?: number; signatures?: Signatures } = {},
) {
  const { cacheMax = limits.ticketCacheMax, signatures = portableSignatures } = options;
  const verified = new Map<string, { bytes: Uint8Array; ticket: StorageTicket }>();
  return {
    verify(bytes: Uint8Array, where: { node: string; now: number }): StorageTicket {
      const key = bytesToHex(bytes.subarray(bytes.byteLength - ticketSignatureBytes));
      const known = verified.get(key);
      if (known && equalBytes(known.bytes, bytes)) return checkScope(known.ticket, where);
      const ticket = verifyTicket(publicKey, bytes, where, signatures);
      verified.delete(key);
      verified.set(key, { bytes: bytes.slice(), ticket });
      if (verified.size > cacheMax) verified.delete(verified.keys().next().value!);
      return ticket;
    },
  };
}

/** How servers make tickets: signed with the cluster's ticket key, good for the ticket lifetime from now. */
export function ticketIssuer(secretKey: Uint8Array, clock: Clock, signatures: Signatures = portableSignatures) {
  const expiresAt = () => clock.now() + limits.ticketLifetimeMs;
  return {
    /** One put ticket for these chunks on `node`. */
    put(node: string, chunks: readonly { hash: string; bytes: number }[]): Uint8Array {
      if (chunks.length === 0) throw new Error("programmer error: a put ticket names at least one chunk");
      const bytesMax = Math.max(...chunks.map((chunk) => chunk.bytes));
      return signTicket(secretKey, {
        op: "put",
        node,
        hashes: chunks.map((chunk) => chunk.hash),
        bytesMax,
        expiresAt: expiresAt(),
      }, signatures);
    },
    /**
     * Get tickets for chunks on the nodes that hold them: per node, its chunks in order, a
     * ticket per `ticketHashesMax` of them.
     */
    get(chunks: readonly { hash: string; nodes: readonly string[] }[]): NodeTicket[] {
      const perNode = new Map<string, Set<string>>();
      for (const chunk of chunks) {
        for (const node of chunk.nodes) {
          const hashes = perNode.get(node) ?? perNode.set(node, new Set()).get(node)!;
          hashes.add(chunk.hash);
        }
      }
      const tickets: NodeTicket[] = [];
      const until = expiresAt();
      for (const [node, set] of perNode) {
        const hashes = [...set];
        for (let start = 0; start < hashes.length; start += limits.ticketHashesMax) {
          const group = hashes.slice(start, start + limits.ticketHashesMax);
          tickets.push({
            node,
            ticket: signTicket(secretKey, { op: "get", node, hashes: group, expiresAt: until }, signatures),
          });
        }
      }
      return tickets;
    },
  };
}
export type TicketIssuer = ReturnType<typeof ticketIssuer>;

/**
 * A carrier's index of the tickets it was given: which one lets it get `hash` from `node`.
 * Tickets it cannot read are left out (the node would refuse them anyway).
 */
export function ticketIndex(tickets: readonly NodeTicket[]): (node: string, hash: string) => Uint8Array | undefined {
  const index = new Map<string, Uint8Array>();
  for (const { node, ticket } of tickets) {
    let fields: StorageTicket;
    try {
      fields = readTicket(ticket);
    } catch {
      continue;
    }
    for (const hash of fields.hashes) index.set(`${node}/${hash}`, ticket);
  }
  return (node, hash) => index.get(`${node}/${hash}`);
}
