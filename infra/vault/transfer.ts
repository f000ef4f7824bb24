/**
 * Uploads and downloads on the owner's machine. An upload reads the file a part at a time
 * (memory is bounded by a part, not by the file), seals each part in the crypto actor,
 * hides it in a generated cover in the stego actor, cuts the PNG into chunks, asks the
 * leader where each chunk goes and puts it on R distinct nodes in parallel, a put that fails
 * going to another node. Only when every replica of every chunk has acknowledged is the
 * manifest recorded; an upload that cannot finish removes what it stored and records nothing.
 * A download reads each chunk from any replica that returns it intact, falling back to the
 * next on a timeout, an error or a hash mismatch, and writes the file only once it is whole
 * and matches its content hash.
 */
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { Bus, Logger, RandomSource } from "../../actors/ports.ts";
import {
  type Chunk,
  cutIntoChunks,
  looksLikePng,
  newObjectKeys,
  type ObjectKeys,
  openObjectKeys,
  partCount,
  partKeys,
  previewPartIndex,
  wrapDataKey,
} from "../../actors/peer/vault.ts";
import {
  IntegrityError,
  limits,
  NotFoundError,
  UnavailableError,
  ValidationError,
  VeilError,
} from "../../events/mod.ts";
import type { ImageManifest } from "../../projections/images.ts";
import { exists } from "../files.ts";
import { sendCommand } from "../server/commands.ts";
import { summary } from "../server/vault.ts";
import { chunkReply, storeRequest } from "../storage/client.ts";
import type { CryptoActor, StegoActor } from "../workers/actors.ts";

export interface TransferDeps {
  readonly bus: Bus;
  readonly crypto: CryptoActor;
  readonly stego: StegoActor;
  readonly random: RandomSource;
  readonly session: { readonly user: string; readonly token: string };
  readonly accountKey: Uint8Array;
  readonly logger: Logger;
  /** Bytes of the file done so far, of all. */
  readonly onProgress?: (done: number, total: number) => void;
}

type StoredChunk = { hash: string; bytes: number; nodes: string[] };

/**
 * Runs `work` over `items` with at most `limit` in flight. The first failure fails the whole,
 * but only once every lane has stopped: no put or write is still running when the caller
 * cleans up after it.
 */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>) {
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

const command = (bus: Bus, name: string, data: unknown) =>
  sendCommand(bus, name, data, { timeoutMs: limits.identityCommandTimeoutMs });

export async function upload(
  deps: TransferDeps,
  file: { path: string; name: string; type: string },
  /** `cover`: the user's own PNG to hide the file in (files of one part only), instead of a generated one. */
  options: { replicas: number; cover?: Uint8Array },
) {
  const { bus, crypto, stego, random, session, accountKey, logger } = deps;
  const handle = await open(file.path, "r").catch((cause: NodeJS.ErrnoException) => {
    throw new ValidationError(`cannot read ${file.path}: ${cause.code === "ENOENT" ? "no such file" : cause.message}`, {
      cause,
    });
  });
  // Every chunk this upload newly stored, so a failed upload can take them back.
  const stored: { hash: string; node: string }[] = [];
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new ValidationError(`${file.path} is not a file`);
    if (info.size > limits.objectBytesMax) {
      throw new ValidationError(`${file.path} is over the ${limits.objectBytesMax}-byte limit`);
    }
    const keys = newObjectKeys(random);
    const parts = partCount(info.size);
    // One cover for several parts would let anyone who compares them see where the data is.
    if (options.cover && parts > 1) {
      throw new ValidationError(
        `a cover of your own takes files up to ${limits.vaultPartBytes} bytes (one part); ` +
          `${file.name} is larger: leave out --cover and it gets generated covers`,
      );
    }
    const contentHash = sha256.create();
    let done = 0;
    // Parts go through in parallel (one per stego worker), each read and hashed in file order:
    // memory is bounded by the parts in flight, and the content hash is the file's.
    const manifestParts: { chunks: StoredChunk[] }[] = new Array(parts);
    let reading = Promise.resolve();
    const partIndexes = Array.from({ length: parts }, (_, index) => index);
    await eachLimited(partIndexes, limits.partsInFlight, async (index) => {
      const length = Math.min(limits.vaultPartBytes, info.size - index * limits.vaultPartBytes);
      const plaintext = new Uint8Array(length);
      const read = reading.then(async () => {
        const { bytesRead } = await handle.read(plaintext, 0, length, index * limits.vaultPartBytes);
        if (bytesRead !== length) throw new ValidationError(`${file.path} changed while it was read`);
        contentHash.update(plaintext);
      });
      reading = read.catch(() => {});
      await read;
      const chunks = await sealPart(crypto, stego, random, keys, index, plaintext, options.cover);
      const placed: StoredChunk[] = new Array(chunks.length);
      await eachLimited(chunks, limits.transferConcurrency, async (chunk, position) => {
        placed[position] = await putReplicas(bus, chunk, options.replicas, stored, logger);
      });
      manifestParts[index] = { chunks: placed };
      done += length;
      deps.onProgress?.(done, info.size);
    });
    const preview = await previewOf(deps, handle, info.size, file.path);
    let previewPart: { chunks: StoredChunk[] } | undefined;
    if (preview) {
      const chunks = await sealPart(crypto, stego, random, keys, previewPartIndex, preview);
      const placed: StoredChunk[] = [];
      for (const chunk of chunks) placed.push(await putReplicas(bus, chunk, options.replicas, stored, logger));
      previewPart = { chunks: placed };
    }
    const manifest = {
      image: keys.image,
      name: file.name,
      bytes: info.size,
      // What the content is, not what the name says: a PNG is an image whatever it is called.
      type: preview ? "image/png" : file.type,
      contentHash: contentHash.digest(),
      keyWrapped: wrapDataKey(accountKey, keys, random),
      replicas: options.replicas,
      parts: manifestParts,
      ...(previewPart ? { preview: previewPart } : {}),
    };
    try {
      return await command(bus, "vault.store", { ...session, manifest }) as ReturnType<typeof summary>;
    } catch (error) {
      // A lost reply or a timeout does not say the manifest was not recorded: ask before taking anything back.
      const definite = error instanceof VeilError &&
        ["validation", "unauthenticated", "forbidden"].includes(error.code);
      if (!definite) {
        const recorded = await command(bus, "vault.get", { ...session, image: keys.image }).catch(() => undefined);
        if (recorded) return summary(recorded as ImageManifest);
      }
      throw error;
    }
  } catch (error) {
    await takeBack(bus, stored, logger);
    throw error;
  } finally {
    await handle.close();
  }
}

/**
 * A PNG's 128 x 128 preview, or nothing for any other file. A file that starts like a PNG
 * but does not decode is stored all the same, without a preview.
 */
async function previewOf(
  deps: TransferDeps,
  handle: Awaited<ReturnType<typeof open>>,
  size: number,
  path: string,
): Promise<Uint8Array | undefined> {
  if (size < 8 || size > limits.pngBytesMax) return undefined;
  const head = new Uint8Array(8);
  await handle.read(head, 0, 8, 0);
  if (!looksLikePng(head)) return undefined;
  const png = new Uint8Array(size);
  await handle.read(png, 0, size, 0);
  try {
    return await deps.stego.preview(png);
  } catch (error) {
    deps.logger.warn("the file looks like a PNG but does not decode; stored without a preview", {
      file: basename(path),
      reason: (error as Error).message,
    });
    return undefined;
  }
}

/** Fetches and opens an object's preview (images only). */
export async function downloadPreview(deps: TransferDeps, reference: string): Promise<Uint8Array> {
  const { bus, crypto, stego, session, accountKey, logger } = deps;
  const manifest = await command(bus, "vault.get", { ...session, image: reference }) as ImageManifest;
  if (!manifest.preview) throw new NotFoundError(`${manifest.name} has no preview (only PNG images get one)`);
  const keys = openObjectKeys(accountKey, manifest.image, manifest.keyWrapped);
  const pieces: Uint8Array[] = [];
  const damaged: string[] = [];
  for (const chunk of manifest.preview.chunks) {
    pieces.push(await fetchChunk(bus, chunk, logger, (node) => damaged.push(`${chunk.hash}/${node}`)));
  }
  const png = new Uint8Array(pieces.reduce((sum, piece) => sum + piece.byteLength, 0));
  let offset = 0;
  for (const piece of pieces) {
    png.set(piece, offset);
    offset += piece.byteLength;
  }
  const { sealKey, orderKey } = partKeys(keys, previewPartIndex);
  const { objectId, plaintext } = await crypto.open(sealKey, await stego.extract(png, orderKey));
  if (bytesToHex(objectId) !== manifest.image) throw new IntegrityError("the preview of another object was found here");
  for (const entry of damaged) {
    const [hash, node] = entry.split("/");
    await command(bus, "vault.damaged", { ...session, image: manifest.image, hash, node }).catch((error: Error) =>
      logger.warn("could not report a damaged replica", { node, reason: error.message })
    );
  }
  return plaintext;
}

async function sealPart(
  crypto: CryptoActor,
  stego: StegoActor,
  random: RandomSource,
  keys: ObjectKeys,
  index: number,
  plaintext: Uint8Array,
  cover?: Uint8Array,
): Promise<Chunk[]> {
  const { sealKey, orderKey } = partKeys(keys, index);
  const sealed = await crypto.seal(sealKey, keys.objectId, plaintext);
  const coverSeed = new DataView(random.bytes(4).buffer).getUint32(0);
  const { png } = await stego.embed({ payload: sealed, stegoKey: orderKey, bits: 1, coverSeed, cover });
  return cutIntoChunks(png);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `attempt` again, after a growing pause, while it answers busy (a node at its bound)
 * or unavailable (a leader in the middle of a change): both pass, neither means "give up".
 */
async function patiently<T>(attempt: () => Promise<T>): Promise<T> {
  for (let round = 1;; round++) {
    try {
      return await attempt();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (round >= limits.busyRetriesMax || (code !== "busy" && code !== "unavailable")) throw error;
      await pause(limits.busyRetryPauseMs * round);
    }
  }
}

/** Puts a chunk on `replicas` distinct nodes; a node that fails is replaced by another, a bounded number of times. */
async function putReplicas(
  bus: Bus,
  chunk: Chunk,
  replicas: number,
  stored: { hash: string; node: string }[],
  logger: Logger,
): Promise<StoredChunk> {
  const holding = new Set<string>();
  const failed = new Set<string>();
  let lastError: Error | undefined;
  for (let attempt = 0; holding.size < replicas && attempt < limits.putAttemptsMax; attempt++) {
    let targets: string[];
    try {
      const placement = await patiently(() =>
        sendCommand(bus, "cluster.place", {
          bytes: chunk.bytes.byteLength,
          replicas: replicas - holding.size,
          exclude: [...holding, ...failed],
        })
      );
      targets = (placement as { nodes: string[] }).nodes;
    } catch (error) {
      lastError = error as Error;
      break;
    }
    await Promise.all(targets.map(async (node) => {
      try {
        const reply = await patiently(() =>
          storeRequest(bus, node, "put", { hash: chunk.hash, bytes: chunk.bytes })
        ) as {
          stored: boolean;
        };
        holding.add(node);
        if (reply.stored) stored.push({ hash: chunk.hash, node });
      } catch (error) {
        failed.add(node);
        lastError = error as Error;
        logger.warn("a chunk put failed; trying another node", { node, reason: (error as Error).message });
      }
    }));
  }
  if (holding.size < replicas) {
    throw new UnavailableError(
      `could not store a chunk on ${replicas} nodes (${holding.size} took it)${
        lastError ? `: ${lastError.message}` : ""
      }; nothing was recorded`,
      { cause: lastError },
    );
  }
  return { hash: chunk.hash, bytes: chunk.bytes.byteLength, nodes: [...holding] };
}

/** Best effort: what a failed upload stored is removed again (only chunks it newly stored, never shared ones). */
async function takeBack(bus: Bus, stored: readonly { hash: string; node: string }[], logger: Logger): Promise<void> {
  await eachLimited(stored, limits.transferConcurrency, async ({ hash, node }) => {
    await storeRequest(bus, node, "delete", { hash }).catch((error: Error) =>
      logger.warn("could not remove a chunk of a failed upload", { node, reason: error.message })
    );
  });
}

/** Reads one chunk from the first replica that returns it intact; replicas found damaged are reported. */
async function fetchChunk(
  bus: Bus,
  chunk: StoredChunk,
  logger: Logger,
  reportDamaged: (node: string) => void,
): Promise<Uint8Array> {
  const problems: string[] = [];
  for (const node of chunk.nodes) {
    try {
      const bytes = chunkReply.parse(await storeRequest(bus, node, "get", { hash: chunk.hash }));
      if (bytesToHex(sha256(bytes)) === chunk.hash) return bytes;
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

export async function download(
  deps: TransferDeps,
  reference: string,
  /** `output` names the file to write, given the manifest (a default can come from the stored name). */
  options: { output: (manifest: ImageManifest) => string; force?: boolean },
): Promise<{ manifest: ImageManifest; output: string }> {
  const { bus, crypto, stego, session, accountKey, logger } = deps;
  const manifest = await command(bus, "vault.get", { ...session, image: reference }) as ImageManifest;
  const output = options.output(manifest);
  if (!options.force && (await exists(output))) {
    throw new ValidationError(`${output} exists; add --force to replace it`);
  }
  const keys = openObjectKeys(accountKey, manifest.image, manifest.keyWrapped);
  const partial = join(dirname(output), `.${basename(output)}.${bytesToHex(deps.random.bytes(6))}.partial`);
  const out = await open(partial, "wx", 0o600);
  try {
    const contentHash = sha256.create();
    let done = 0;
    // Replicas found damaged or missing, reported once the file is safe, so repair can put them back.
    const damaged: { hash: string; node: string }[] = [];
    // Parts come back in parallel; each is written (and hashed) in file order: part i waits its turn.
    const turns = manifest.parts.map(() => {
      let resolve = () => {};
      const promise = new Promise<void>((done) => (resolve = done));
      return { promise, resolve };
    });
    turns[0]?.resolve();
    await eachLimited(manifest.parts, limits.partsInFlight, async (part, index) => {
      const pieces: Uint8Array[] = new Array(part.chunks.length);
      await eachLimited(part.chunks, limits.transferConcurrency, async (chunk, position) => {
        pieces[position] = await fetchChunk(bus, chunk, logger, (node) => damaged.push({ hash: chunk.hash, node }));
      });
      const png = new Uint8Array(pieces.reduce((sum, piece) => sum + piece.byteLength, 0));
      let offset = 0;
      for (const piece of pieces) {
        png.set(piece, offset);
        offset += piece.byteLength;
      }
      const { sealKey, orderKey } = partKeys(keys, index);
      const sealed = await stego.extract(png, orderKey);
      const { objectId, plaintext } = await crypto.open(sealKey, sealed);
      if (bytesToHex(objectId) !== manifest.image) throw new IntegrityError("a part of another object was found here");
      if (plaintext.byteLength !== Math.min(limits.vaultPartBytes, manifest.bytes - index * limits.vaultPartBytes)) {
        throw new IntegrityError(`part ${index} of ${manifest.name} has the wrong size`);
      }
      await turns[index]!.promise;
      contentHash.update(plaintext);
      await out.write(plaintext, 0, plaintext.byteLength, index * limits.vaultPartBytes);
      done += plaintext.byteLength;
      deps.onProgress?.(done, manifest.bytes);
      turns[index + 1]?.resolve();
    });
    if (done !== manifest.bytes || bytesToHex(contentHash.digest()) !== bytesToHex(manifest.contentHash)) {
      throw new IntegrityError(`${manifest.name} did not come back as it was stored (size or content hash differs)`);
    }
    await out.sync();
    await out.close();
    await rename(partial, output);
    for (const { hash, node } of damaged) {
      await command(bus, "vault.damaged", { ...session, image: manifest.image, hash, node }).catch((error: Error) =>
        logger.warn("could not report a damaged replica", { node, reason: error.message })
      );
    }
    return { manifest, output };
  } catch (error) {
    await out.close().catch(() => {});
    await rm(partial, { force: true });
    throw error;
  }
}
