/**
 * What uploads and downloads share: the dependencies of a transfer, bounded parallel work,
 * patient retries, and sealing a part into chunks and reading one back. A part's sealed
 * bytes are hidden in one cover PNG, cut into chunks named by their SHA-256. Reading needs
 * the get tickets that came with the manifest (`vault.get`, `grant.view`).
 */
import { contentMacKey } from "./meta.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import type {
  Bus,
  Clock,
  Digests,
  IncrementalHash,
  Logger,
  RandomSource,
  SealWork,
  StegoWork,
  Timers,
} from "../ports.ts";
import { type Chunk, cutIntoChunks, type ObjectKeys, partKeys } from "./vault.ts";
import { ticketIndex } from "../storage-node/tickets.ts";
import { IntegrityError, limits, nodeTickets, type VeilError } from "../../events/mod.ts";
import type { CommandSender } from "./commands.ts";
import { storeRequest } from "../storage-node/client.ts";

export interface TransferDeps {
  readonly bus: Bus;
  /** The same bus's commands, sealed (see commands.ts). */
  readonly send: CommandSender;
  readonly crypto: SealWork;
  readonly stego: StegoWork;
  readonly random: RandomSource;
  readonly clock: Clock;
  /** Pauses between patient retries run on these. */
  readonly timers: Timers;
  readonly digests: Digests;
  readonly session: { readonly user: string; readonly token: string };
  readonly accountKey: Uint8Array;
  readonly logger: Logger;
  /** Bytes of the file done so far, of all. */
  readonly onProgress?: (done: number, total: number) => void;
}

export type StoredChunk = { hash: string; bytes: number; nodes: string[] };

/** Which get ticket lets this transfer read `hash` from `node`, if it was given one. */
export type TicketFinder = (node: string, hash: string) => Uint8Array | undefined;

/** The tickets a reply carried (`vault.get`, `grant.view`), checked for shape and indexed by node and chunk. */
export function ticketsOf(reply: unknown): TicketFinder {
  return ticketIndex(nodeTickets.parse((reply as { tickets?: unknown } | null)?.tickets ?? []));
}

/**
 * Runs `work` over `items` with at most `limit` in flight. The first failure fails the whole,
 * but only once every lane has stopped: no put or write is still running when the caller
 * cleans up after it.
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>,
) {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (!failure && next < items.length) {
      const index = next++;
      try {
        await work(items[index]!, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure) throw failure.error;
}

/**
 * The running content hash of a file as its manifest records it: HMAC-SHA-256 under the
 * object's content key, or the plain SHA-256 a legacy (v1) manifest has; the value is the
 * same as meta.ts's `contentHashOf`.
 */
export function contentHasher(digests: Digests, keys: ObjectKeys, legacy: boolean): IncrementalHash {
  return legacy ? digests.sha256() : digests.hmacSha256(contentMacKey(keys));
}

/** A command of a transfer: given the time an identity check may take (a session's, a grant's). */
export const command = (deps: Pick<TransferDeps, "send">, name: string, data: unknown) =>
  deps.send(name, data, { timeoutMs: limits.identityCommandTimeoutMs });

const pause = (timers: Timers, ms: number) => new Promise<void>((resolve) => timers.setTimeout(resolve, ms));

/**
 * Runs `attempt` again, after a growing pause, while it answers busy (a node at its bound)
 * or unavailable (a leader in the middle of a change): both pass, neither means "give up".
 */
export async function patiently<T>(timers: Timers, attempt: () => Promise<T>): Promise<T> {
  for (let round = 1;; round++) {
    try {
      return await attempt();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (round >= limits.busyRetriesMax || (code !== "busy" && code !== "unavailable")) throw error;
      await pause(timers, limits.busyRetryPauseMs * round);
    }
  }
}

/**
 * Seals one part and hides it, at `bits` per colour channel (1 unless asked: the least
 * visible), in `cover` or in a generated cover sized to fit; returns the PNG's chunks.
 */
export async function sealPart(
  { crypto, stego, random, digests }: Pick<TransferDeps, "crypto" | "stego" | "random" | "digests">,
  keys: ObjectKeys,
  index: number,
  plaintext: Uint8Array,
  options: { cover?: Uint8Array; bits?: number } = {},
): Promise<Chunk[]> {
  const { sealKey, orderKey } = partKeys(keys, index);
  const sealed = await crypto.seal(sealKey, keys.objectId, plaintext);
  const coverSeed = new DataView(random.bytes(4).buffer).getUint32(0);
  const { png } = await stego.embed({
    payload: sealed,
    stegoKey: orderKey,
    bits: options.bits ?? 1,
    coverSeed,
    cover: options.cover,
  });
  return await cutIntoChunks(png, digests.chunkHash);
}

/** Reads one chunk from the first replica that returns it intact; replicas found damaged are reported. */
async function fetchChunk(
  { bus, digests }: Pick<TransferDeps, "bus" | "digests">,
  chunk: StoredChunk,
  tickets: TicketFinder,
  logger: Logger,
  reportDamaged: (node: string) => void,
): Promise<Uint8Array> {
  const problems: string[] = [];
  for (const node of chunk.nodes) {
    const ticket = tickets(node, chunk.hash);
    if (!ticket) {
      problems.push(`${node}: no get ticket came for it`);
      continue;
    }
    try {
      const bytes = await storeRequest(bus, node, "get", { hash: chunk.hash, ticket });
      if ((await digests.chunkHash(bytes)) === chunk.hash) return bytes;
      problems.push(`${node}: returned bytes that do not match`);
      logger.warn("a replica returned a damaged chunk", { node, chunk: chunk.hash });
      reportDamaged(node);
    } catch (error) {
      problems.push(`${node}: ${(error as Error).message}`);
      const code = (error as VeilError).code;
      if (code === "integrity" || code === "not-found") {
        logger.warn("a replica is damaged or missing", { node, chunk: chunk.hash });
        reportDamaged(node);
      }
    }
  }
  throw new IntegrityError(`the object is damaged: chunk ${chunk.hash} is on no node intact (${problems.join("; ")})`);
}

/**
 * Reads one part back: its chunks from intact replicas (a few at a time), the cover they
 * make up, the sealed bytes hidden in it, and the plaintext they open to, checked to belong
 * to this object. Replicas found damaged or missing are added to `damaged`.
 */
export async function readPart(
  deps: Pick<TransferDeps, "bus" | "crypto" | "stego" | "logger" | "digests">,
  keys: ObjectKeys,
  part: { chunks: readonly StoredChunk[] },
  index: number,
  tickets: TicketFinder,
  damaged: { hash: string; node: string }[],
): Promise<Uint8Array> {
  const pieces: Uint8Array[] = new Array(part.chunks.length);
  await eachLimited(part.chunks, limits.transferConcurrency, async (chunk, position) => {
    pieces[position] = await fetchChunk(
      deps,
      chunk,
      tickets,
      deps.logger,
      (node) => damaged.push({ hash: chunk.hash, node }),
    );
  });
  const png = new Uint8Array(pieces.reduce((sum, piece) => sum + piece.byteLength, 0));
  let offset = 0;
  for (const piece of pieces) {
    png.set(piece, offset);
    offset += piece.byteLength;
  }
  const { sealKey, orderKey } = partKeys(keys, index);
  const { objectId, plaintext } = await deps.crypto.open(sealKey, await deps.stego.extract(png, orderKey));
  if (bytesToHex(objectId) !== keys.image) throw new IntegrityError("a part of another object was found here");
  return plaintext;
}

/** Reports replicas found damaged or missing, once the data is safe, so repair can put them back. */
export async function reportDamaged(
  deps: TransferDeps,
  image: string,
  damaged: readonly { hash: string; node: string }[],
): Promise<void> {
  for (const { hash, node } of damaged) {
    await command(deps, "vault.damaged", { ...deps.session, image, hash, node }).catch((error: Error) =>
      deps.logger.warn("could not report a damaged replica", { node, reason: error.message })
    );
  }
}
