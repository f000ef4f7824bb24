/**
 * The vault: objects (files of any kind; images get previews) stored by their owner, on
 * `veil.evt.image.<id>`. `ImageStored` carries the manifest, appended only once every
 * replica of every chunk acknowledged its put: where the chunks are, their hashes, and the
 * object's data key wrapped by the owner's account key. Nothing in it opens the object
 * without the owner's password, and since v2 nothing in it names the object either: its
 * name and type are sealed under a key derived from the data key (so the owner, and a grant
 * recipient for a grant's copy, can read them, and the servers cannot), and its content hash
 * is keyed, so nobody can confirm a file they already have against the log.
 */
import { defineEvents, type EventsOf } from "./envelope.ts";
import { limits } from "./limits.ts";
import { array, boolean, bytes, integer, object, optional, string } from "./schema.ts";
import { username } from "./user.ts";

export const imageIdPattern = /^[0-9a-f]{32}$/;
export const imageId = string({ lengthMin: 32, lengthMax: 32, pattern: imageIdPattern });
const nodeId = string({ lengthMin: 1, lengthMax: limits.subjectTokenLengthMax, pattern: /^[A-Za-z0-9_-]+$/ });
/** A chunk is named by its SHA-256, 64 lowercase hex digits. */
export const chunkHashPattern = /^[0-9a-f]{64}$/;
export const chunkHash = string({ lengthMin: 64, lengthMax: 64, pattern: chunkHashPattern });

/** A name as it was uploaded: printable, no path separators (it is a name, not a path). */
export const objectName = string({ lengthMin: 1, lengthMax: 255, pattern: /^[^/\\\p{C}]+$/u });
/** A media type as the uploader's machine judged it: printable ASCII. */
export const objectType = string({ lengthMin: 1, lengthMax: 128, pattern: /^[\x20-\x7e]+$/ });

const chunk = object({
  hash: chunkHash,
  bytes: integer({ min: 1, max: limits.chunkBytes }),
  nodes: array(nodeId, { lengthMin: 1, lengthMax: limits.replicasMax }),
});

/** One part of an object: its sealed bytes hidden in one cover PNG, cut into chunks. */
export const manifestPart = object({ chunks: array(chunk, { lengthMin: 1, lengthMax: limits.chunksPerPartMax }) });
const part = manifestPart;

/** What v1 manifests said in the clear; v2 seals it (`meta`). */
export const legacyMeta = object({ name: objectName, type: objectType });

/**
 * v1 had `name` and `type` in the clear and `contentHash` a plain SHA-256. Read as v2, they
 * become `legacy` (which also says the hash is a plain one), so a client opens old objects
 * as it always did while the servers, which read only v2, never see a name in a new one.
 */
function upcastImageStoredV1(data: unknown): unknown {
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new Error("data is not a map");
  const { name, type, ...rest } = data as Record<string, unknown>;
  return { ...rest, legacy: { name, type } };
}

/** What an object's manifest records (ImageStored), and what `vault.get` answers with. */
export const manifestShape = {
  owner: username,
  image: imageId,
  /** `{ name, type }` as msgpack, sealed on the owner's machine under the object's meta key (actors/peer/meta.ts). */
  meta: optional(bytes({ lengthMin: 1, lengthMax: limits.objectMetaSealedBytesMax })),
  /** Only on manifests written as v1: their name and type in the clear, and `contentHash` a plain SHA-256. */
  legacy: optional(legacyMeta),
  bytes: integer({ min: 0, max: limits.objectBytesMax }),
  /** HMAC-SHA-256 of the plaintext under the object's content-MAC key, checked after a download (legacy: SHA-256). */
  contentHash: bytes({ lengthMin: 32, lengthMax: 32 }),
  /** The object's data key, wrapped by the owner's account key. */
  keyWrapped: bytes({ lengthMin: 1, lengthMax: 256 }),
  replicas: integer({ min: 1, max: limits.replicasMax }),
  parts: array(part, { lengthMin: 1, lengthMax: limits.partsPerObjectMax }),
  /** Plaintext bytes per part (the last may hold fewer); absent in manifests from before it was recorded: 4 MiB. */
  partBytes: optional(integer({ min: 1, max: limits.coverPartBytesMax })),
  /** Bits hidden per colour channel (`veil upload --bits`); absent in manifests from before it was recorded: 1. */
  bitsPerChannel: optional(integer({ min: 1, max: 4 })),
  /** Images: a 128 x 128 preview, sealed and hidden like a part (under its own key). */
  preview: optional(part),
  /** A grant's copy: the object was sealed for that grant (not under the account key), and is not listed. */
  grant: optional(string({ lengthMin: 32, lengthMax: 32, pattern: imageIdPattern })),
};

export const imageEvents = defineEvents({
  ImageStored: {
    version: 2,
    data: object(manifestShape),
    upcasters: { 1: upcastImageStoredV1 },
  },
  /**
   * The owner shows (or stops showing) the object's preview to users who discover them
   * online. `name` is what they are shown (v2): chosen, and so made public, by the owner.
   * v1 had none; its objects show the legacy name their manifest had in the clear.
   */
  DiscoverabilityChanged: {
    version: 2,
    data: object({ owner: username, image: imageId, discoverable: boolean(), name: optional(objectName) }),
    upcasters: { 1: (data: unknown) => data },
  },
  ImageRemoved: { version: 1, data: object({ owner: username, image: imageId }) },
  /** Repair: a verified copy of chunk `hash` of `image` now lives on `node` too. */
  ChunkReplicated: { version: 1, data: object({ image: imageId, hash: chunkHash, node: nodeId }) },
  /** `node` no longer holds chunk `hash` of `image` (it was found damaged or missing there). */
  ChunkLost: { version: 1, data: object({ image: imageId, hash: chunkHash, node: nodeId }) },
});

export type ImageEvent = EventsOf<typeof imageEvents>;
