/**
 * The vault's objects as the log records them: each stored object's manifest, by id, until
 * its owner removes it, and whether its owner shows it to users who discover them. Which chunks are still referenced (for garbage collection and
 * repair) is a fold over this.
 */
import { type ImageEvent, imageEvents, type Infer, type VeilEvent } from "../events/mod.ts";
import type { Projection } from "./projection.ts";

export type ImageManifest = Infer<(typeof imageEvents)["ImageStored"]["data"]> & {
  readonly storedAt: number;
  /** Shown, with its preview, to users who discover the owner online. */
  readonly discoverable?: boolean;
};

export interface ImagesState {
  readonly images: Readonly<Record<string, ImageManifest>>;
}

function isImageEvent(event: VeilEvent): event is ImageEvent {
  return Object.hasOwn(imageEvents, event.type);
}

export const imagesProjection: Projection<ImagesState> = {
  name: "images",
  description: "the vault: every stored object's manifest (name, size, type, chunks and where they are)",
  version: 4,
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
        return { images: { ...state.images, [image.image]: { ...image, discoverable: event.data.discoverable } } };
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
export function chunksOf(image: ImageManifest): ImageManifest["parts"][number]["chunks"] {
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

/**
 * An owner's object by id, or by name (the latest stored under it). Someone else's is not
 * found, like a missing one; so is a grant's copy, which only its grant opens.
 */
export function findImage(state: ImagesState, owner: string, reference: string): ImageManifest | undefined {
  const mine = (image: ImageManifest | undefined) => image && image.owner === owner && image.grant === undefined;
  const byId = imageOf(state, reference);
  if (byId) return mine(byId) ? byId : undefined;
  return Object.values(state.images)
    .filter((image) => mine(image) && image.name === reference)
    .sort((a, b) => b.storedAt - a.storedAt)[0];
}

/** An owner's own objects (not grants' copies), oldest first. */
export function imagesOf(state: ImagesState, owner: string): ImageManifest[] {
  return Object.values(state.images)
    .filter((image) => image.owner === owner && image.grant === undefined)
    .sort((a, b) => a.storedAt - b.storedAt);
}
