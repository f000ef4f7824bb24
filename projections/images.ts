/**
 * The vault's objects as the log records them: each stored object's manifest, by id, until
 * its owner removes it, and whether its owner shows it (and under what name) to users who
 * discover them. Which chunks are still referenced (for garbage collection and repair) is a
 * fold over this. Names are sealed in manifests: nothing here can look an object up by the
 * name its owner gave it, only by id or by the name its owner chose to show.
 */
import { type ImageEvent, imageEvents, type Infer, type StoredSummary, type VeilEvent } from "../events/mod.ts";
import type { Projection } from "./projection.ts";

export type ImageManifest = Infer<(typeof imageEvents)["ImageStored"]["data"]> & {
  readonly storedAt: number;
  /** Shown, with its preview, to users who discover the owner online. */
  readonly discoverable?: boolean;
  /** The name it is shown under while discoverable (public: the owner chose it). */
  readonly shownName?: string;
};

export interface ImagesState {
  readonly images: Readonly<Record<string, ImageManifest>>;
}

function isImageEvent(event: VeilEvent): event is ImageEvent {
  return Object.hasOwn(imageEvents, event.type);
}

export const imagesProjection: Projection<ImagesState> = {
  name: "images",
  description: "the vault: every stored object's manifest (sealed name and type, size, chunks and where they are)",
  version: 5,
  initial: () => ({ images: {} }),
  evolve(state, event) {
    if (!isImageEvent(event)) return state;
    switch (event.type) {
      case "ImageStored":
        if (Object.hasOwn(state.images, event.data.image)) return state;
        return { images: { ...state.images, [event.data.image]: { ...event.data, storedAt: event.at } } };
      case "ChunkReplicated":
      case "ChunkLost": {
        const image = imageOf(state, event.data.image);
        if (!image) return state;
        const { hash, node } = event.data;
        const replicated = event.type === "ChunkReplicated";
        const moved = (part: ImageManifest["parts"][number]) => ({
          chunks: part.chunks.map((chunk) => {
            if (chunk.hash !== hash) return chunk;
            const others = chunk.nodes.filter((holder) => holder !== node);
            return { ...chunk, nodes: replicated ? [...others, node] : others };
          }),
        });
        const parts = image.parts.map(moved);
        const preview = image.preview && moved(image.preview);
        return { images: { ...state.images, [image.image]: { ...image, parts, ...(preview ? { preview } : {}) } } };
      }
      case "DiscoverabilityChanged": {
        const image = imageOf(state, event.data.image);
        if (!image || image.owner !== event.data.owner) return state;
        const { shownName: _hidden, ...rest } = image;
        // An event from before shown names (v1) shows what a manifest of its time had in the clear.
        const shownName = event.data.name ?? image.legacy?.name;
        const changed = event.data.discoverable && shownName ? { ...rest, shownName } : rest;
        return { images: { ...state.images, [image.image]: { ...changed, discoverable: event.data.discoverable } } };
      }
      case "ImageRemoved": {
        if (!Object.hasOwn(state.images, event.data.image)) return state;
        const { [event.data.image]: _removed, ...images } = state.images;
        return { images };
      }
      default:
        return event satisfies never;
    }
  },
};

/** Every chunk of an object: its parts' and its preview's. */
export function chunksOf(image: Pick<ImageManifest, "parts" | "preview">): ImageManifest["parts"][number]["chunks"] {
  return [...image.parts, ...(image.preview ? [image.preview] : [])].flatMap((part) => part.chunks);
}

/** One object by id, whoever owns it (callers check that it is the caller's). */
export const imageOf = (state: ImagesState, image: string): ImageManifest | undefined =>
  Object.hasOwn(state.images, image) ? state.images[image] : undefined;

/** Every chunk hash some live manifest references: what garbage collection must keep. */
export function referencedChunks(state: ImagesState): Set<string> {
  const hashes = new Set<string>();
  for (const image of Object.values(state.images)) for (const chunk of chunksOf(image)) hashes.add(chunk.hash);
  return hashes;
}

const ownersByState = new WeakMap<ImagesState, ReadonlyMap<string, ReadonlySet<string>>>();

/**
 * Who references each chunk hash: a chunk belongs to the owners whose manifests name it
 * (one, unless a log from before this rule says otherwise). States are never changed in
 * place, so the index is built once per state and kept while the state is.
 */
export function chunkOwners(state: ImagesState): ReadonlyMap<string, ReadonlySet<string>> {
  const known = ownersByState.get(state);
  if (known) return known;
  const owners = new Map<string, Set<string>>();
  for (const image of Object.values(state.images)) {
    for (const chunk of chunksOf(image)) {
      const holders = owners.get(chunk.hash) ?? new Set<string>();
      holders.add(image.owner);
      owners.set(chunk.hash, holders);
    }
  }
  ownersByState.set(state, owners);
  return owners;
}

/**
 * An owner's object by id. Someone else's is not found, like a missing one; so is a grant's
 * copy, which only its grant opens. (Names are resolved on the owner's machine, which alone
 * can read them.)
 */
export function findImage(state: ImagesState, owner: string, image: string): ImageManifest | undefined {
  const found = imageOf(state, image);
  return found && found.owner === owner && found.grant === undefined ? found : undefined;
}

/**
 * An object its owner shows, by id or by the name it is shown under (the latest shown so):
 * what someone who found the owner online may ask for. By id it is returned whether shown or
 * not, and the caller refuses what is not shown, exactly as for a missing one.
 */
export function findShown(state: ImagesState, owner: string, reference: string): ImageManifest | undefined {
  const byId = findImage(state, owner, reference);
  if (byId) return byId;
  return imagesOf(state, owner)
    .filter((image) => image.discoverable && image.shownName === reference)
    .sort((a, b) => b.storedAt - a.storedAt)[0];
}

/** An owner's own objects (not grants' copies), oldest first. */
export function imagesOf(state: ImagesState, owner: string): ImageManifest[] {
  return Object.values(state.images)
    .filter((image) => image.owner === owner && image.grant === undefined)
    .sort((a, b) => a.storedAt - b.storedAt);
}

/**
 * What a listing shows of an object: not where its chunks are, but its sealed name and type
 * and its wrapped key, which the owner's machine opens to show the name.
 */
export function storedSummaryOf(image: ImageManifest): StoredSummary {
  return {
    image: image.image,
    bytes: image.bytes,
    storedAt: image.storedAt,
    replicas: image.replicas,
    chunks: chunksOf(image).length,
    keyWrapped: image.keyWrapped,
    ...(image.meta ? { meta: image.meta } : {}),
    ...(image.legacy ? { legacy: image.legacy } : {}),
  };
}
