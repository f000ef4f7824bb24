/**
 * Uploads on the owner's machine. An upload reads the file a part at a time (memory is
 * bounded by the parts in flight, not by the file), seals each part in the crypto actor,
 * hides it in a cover in the stego actor, cuts the PNG into chunks, asks the leader where
 * the part's chunks go (with a put ticket for each node it chooses) and puts each on R
 * distinct nodes in parallel, a put that fails going to another node. Only when every
 * replica of every chunk has acknowledged is the manifest recorded; an upload that cannot
 * finish removes what it stored and records nothing.
 */
import type { Bus, FileSource, Logger, Timers } from "../ports.ts";
import {
  type Chunk,
  looksLikePng,
  newObjectKeys,
  type ObjectKeys,
  partCount,
  previewPartIndex,
  wrapDataKey,
} from "./vault.ts";
import { sealMeta } from "./meta.ts";
import { checkBits } from "../stego/mod.ts";
import {
  type Infer,
  limits,
  placeReply,
  UnavailableError,
  ValidationError,
  vaultGetReply,
  vaultStoreReply,
  VeilError,
} from "../../events/mod.ts";
import { storedSummaryOf } from "../../projections/images.ts";
import type { CommandSender } from "./commands.ts";
import { storeRequest } from "../storage-node/client.ts";
import type { FileSummary } from "./vault-list.ts";
import {
  command,
  contentHasher,
  eachLimited,
  patiently,
  sealPart,
  type StoredChunk,
  type TransferDeps,
} from "./parts.ts";

/** A file to upload: its bytes, and the name and type it is stored under (sealed). */
export interface UploadFile {
  readonly source: FileSource;
  readonly name: string;
  readonly type: string;
}

export async function upload(
  deps: TransferDeps,
  file: UploadFile,
  /**
   * `cover`: the user's own PNG to hide the file in (files of one part only), instead of a
   * generated one. `bits`: bits per colour channel (1 by default, up to 4: fewer and smaller
   * covers, and noisier ones). `copyFor`: the object is a grant's copy, sealed under the
   * grant's keys (and listed nowhere, and given no preview).
   */
  options: { replicas: number; cover?: Uint8Array; bits?: number; copyFor?: { grant: string; keys: ObjectKeys } },
): Promise<FileSummary> {
  const { bus, random, session, accountKey, logger } = deps;
  if (options.bits !== undefined) checkBits(options.bits, "bits per channel");
  // Every chunk this upload newly stored, so a failed upload can take them back.
  const stored: StoredReplica[] = [];
  const putting: Putting = {
    bus,
    send: deps.send,
    timers: deps.timers,
    session,
    replicas: options.replicas,
    stored,
    logger,
  };
  const size = file.source.size;
  try {
    if (size > limits.objectBytesMax) {
      throw new ValidationError(`${file.name} is over the ${limits.objectBytesMax}-byte limit`);
    }
    const keys = options.copyFor?.keys ?? newObjectKeys(random);
    // One cover for several parts would let anyone who compares them see where the data is:
    // a file hidden in the user's own cover is one part.
    if (options.cover && size > limits.coverPartBytesMax) {
      throw new ValidationError(
        `a cover of your own takes files up to ${limits.coverPartBytesMax} bytes (one part); ` +
          `${file.name} is larger: leave out --cover and it gets generated covers`,
      );
    }
    const partBytes = options.cover ? Math.max(1, size) : limits.vaultPartBytes;
    const parts = partCount(size, partBytes);
    // Keyed, so the log cannot be searched for a file someone already has.
    const contentHash = contentHasher(deps.digests, keys, false);
    let done = 0;
    // Parts go through in parallel (one per stego worker), each read and hashed in file order:
    // memory is bounded by the parts in flight, and the content hash is the file's.
    const manifestParts: { chunks: StoredChunk[] }[] = new Array(parts);
    let reading = Promise.resolve();
    const partIndexes = Array.from({ length: parts }, (_, index) => index);
    await eachLimited(partIndexes, limits.partsInFlight, async (index) => {
      const length = Math.min(partBytes, size - index * partBytes);
      const plaintext = new Uint8Array(length);
      const read = reading.then(async () => {
        const bytesRead = await file.source.read(plaintext, index * partBytes);
        if (bytesRead !== length) throw new ValidationError(`${file.name} changed while it was read`);
        contentHash.update(plaintext);
      });
      reading = read.catch(() => {});
      await read;
      const chunks = await sealPart(deps, keys, index, plaintext, {
        cover: options.cover,
        bits: options.bits,
      });
      manifestParts[index] = { chunks: await putPart(putting, chunks) };
      done += length;
      deps.onProgress?.(done, size);
    });
    const preview = options.copyFor ? undefined : await previewOf(deps, file);
    let previewPart: { chunks: StoredChunk[] } | undefined;
    if (preview) {
      const chunks = await sealPart(deps, keys, previewPartIndex, preview, { bits: options.bits });
      previewPart = { chunks: await putPart(putting, chunks) };
    }
    // What the content is, not what the name says: a PNG is an image whatever it is called.
    const meta = { name: file.name, type: preview ? "image/png" : file.type };
    // Sealed here, under the object's own key: the servers record it, and cannot read it.
    const manifest = {
      image: keys.image,
      meta: sealMeta(keys, meta, random),
      bytes: size,
      contentHash: contentHash.digest(),
      keyWrapped: wrapDataKey(accountKey, keys, random),
      replicas: options.replicas,
      parts: manifestParts,
      partBytes,
      bitsPerChannel: options.bits ?? 1,
      ...(previewPart ? { preview: previewPart } : {}),
      ...(options.copyFor ? { grant: options.copyFor.grant } : {}),
    };
    const described = (stored: Infer<typeof vaultStoreReply>): FileSummary => {
      const { image, bytes, storedAt, replicas, chunks } = stored;
      return { image, ...meta, bytes, storedAt, replicas, chunks };
    };
    let answered = false;
    try {
      const reply = await command(deps, "vault.store", { ...session, manifest });
      answered = true;
      return described(vaultStoreReply.parse(reply));
    } catch (error) {
      // A lost reply, a timeout or a reply this client cannot read does not say the manifest
      // was not recorded: ask before taking anything back. Only the server's own refusal does.
      const definite = !answered && error instanceof VeilError &&
        ["validation", "unauthenticated", "forbidden"].includes(error.code);
      if (!definite) {
        const recorded = await command(deps, "vault.get", { ...session, image: keys.image }).catch(() => undefined);
        if (recorded) return described(storedSummaryOf(vaultGetReply.parse(recorded)));
      }
      throw error;
    }
  } catch (error) {
    await takeBack(putting);
    throw error;
  }
}

/**
 * A PNG's 128 x 128 preview, or nothing for any other file. A file that starts like a PNG
 * but does not decode is stored all the same, without a preview.
 */
async function previewOf(deps: TransferDeps, file: UploadFile): Promise<Uint8Array | undefined> {
  const size = file.source.size;
  if (size < 8 || size > limits.pngBytesMax) return undefined;
  const head = new Uint8Array(8);
  await file.source.read(head, 0);
  if (!looksLikePng(head)) return undefined;
  const png = new Uint8Array(size);
  await file.source.read(png, 0);
  try {
    return await deps.stego.preview(png);
  } catch (error) {
    deps.logger.warn("the file looks like a PNG but does not decode; stored without a preview", {
      file: file.name,
      reason: (error as Error).message,
    });
    return undefined;
  }
}

/**
 * Puts a part's chunks on `replicas` distinct nodes each. One placement for the whole part
 * (a ticket per node names all its chunks, so the leader signs and each node checks once
 * per part, not once per chunk); a chunk that a node then fails to take is placed again on
 * its own, on another node.
 */
async function putPart(putting: Putting, chunks: readonly Chunk[]): Promise<StoredChunk[]> {
  const placed: StoredChunk[] = new Array(chunks.length);
  for (let start = 0; start < chunks.length; start += limits.ticketHashesMax) {
    const group = chunks.slice(start, start + limits.ticketHashesMax);
    let targets: { node: string; ticket: Uint8Array }[] = [];
    try {
      targets = await placeChunks(putting, group, putting.replicas, []);
    } catch (error) {
      // Placed one by one below, which says why if it fails again.
      putting.logger.warn("a part's placement failed; placing its chunks one by one", {
        reason: (error as Error).message,
      });
    }
    await eachLimited(group, limits.transferConcurrency, async (chunk, position) => {
      const puts: ChunkPuts = { holding: new Set(), failed: new Set() };
      await Promise.all(targets.map((target) => putOn(putting, chunk, target, puts)));
      // Nothing more to do when every node took it; otherwise the rest, one chunk at a time.
      placed[start + position] = await putReplicas(putting, chunk, puts);
    });
  }
  return placed;
}

/** Where the leader places these chunks, with a put ticket for each node it chose. */
async function placeChunks(
  { send, timers, session }: Putting,
  chunks: readonly Chunk[],
  replicas: number,
  exclude: readonly string[],
): Promise<{ node: string; ticket: Uint8Array }[]> {
  const placement = await patiently(timers, () =>
    send("cluster.place", {
      ...session,
      chunks: chunks.map((chunk) => ({ hash: chunk.hash, bytes: chunk.bytes.byteLength })),
      replicas,
      exclude,
    }));
  // One node, one put ticket: the leader's word that these chunks may go there.
  return placeReply.parse(placement).tickets;
}

/** What every put of one upload shares. */
interface Putting {
  readonly bus: Bus;
  readonly send: CommandSender;
  readonly timers: Timers;
  readonly session: { readonly user: string; readonly token: string };
  readonly replicas: number;
  /** Every chunk this upload newly stored, so a failed upload can take them back. */
  readonly stored: StoredReplica[];
  readonly logger: Logger;
}

/** What is known of one chunk's puts so far. */
interface ChunkPuts {
  readonly holding: Set<string>;
  readonly failed: Set<string>;
  lastError?: Error;
}

/** Puts a chunk on one node with its ticket; a failure is remembered, not thrown. */
async function putOn(
  { bus, timers, stored, logger }: Putting,
  chunk: Chunk,
  { node, ticket }: { node: string; ticket: Uint8Array },
  puts: ChunkPuts,
): Promise<void> {
  try {
    const reply = await patiently(
      timers,
      () => storeRequest(bus, node, "put", { hash: chunk.hash, bytes: chunk.bytes, ticket }),
    );
    puts.holding.add(node);
    if (reply.stored) stored.push({ hash: chunk.hash, node, ticket });
  } catch (error) {
    puts.failed.add(node);
    puts.lastError = error as Error;
    logger.warn("a chunk put failed; trying another node", { node, reason: (error as Error).message });
  }
}

/**
 * Puts a chunk on `replicas` distinct nodes, beyond those already holding it; a node that
 * fails is replaced by another, a bounded number of times.
 */
async function putReplicas(putting: Putting, chunk: Chunk, puts: ChunkPuts): Promise<StoredChunk> {
  const { replicas } = putting;
  const { holding, failed } = puts;
  for (let attempt = 0; holding.size < replicas && attempt < limits.putAttemptsMax; attempt++) {
    let targets: { node: string; ticket: Uint8Array }[];
    try {
      targets = await placeChunks(putting, [chunk], replicas - holding.size, [...holding, ...failed]);
    } catch (error) {
      puts.lastError = error as Error;
      break;
    }
    await Promise.all(targets.map((target) => putOn(putting, chunk, target, puts)));
  }
  if (holding.size < replicas) {
    throw new UnavailableError(
      `could not store a chunk on ${replicas} nodes (${holding.size} took it)${
        puts.lastError ? `: ${puts.lastError.message}` : ""
      }; nothing was recorded`,
      { cause: puts.lastError },
    );
  }
  return { hash: chunk.hash, bytes: chunk.bytes.byteLength, nodes: [...holding] };
}

/** A chunk this upload newly stored on a node, and the put ticket that let it. */
interface StoredReplica {
  readonly hash: string;
  readonly node: string;
  readonly ticket: Uint8Array;
}

/**
 * Best effort: what a failed upload stored is removed again (only chunks it newly stored,
 * never shared ones). A user's machine may not delete chunks, so it hands them to the
 * servers with the put tickets it stored them under; what is left, garbage collection takes.
 */
async function takeBack({ send, session, stored, logger }: Putting): Promise<void> {
  for (let start = 0; start < stored.length; start += limits.abandonChunksMax) {
    const chunks = stored.slice(start, start + limits.abandonChunksMax);
    await send("vault.abandon", { ...session, chunks }).catch((error: Error) =>
      logger.warn("could not take back the chunks of a failed upload", { reason: error.message })
    );
  }
}
