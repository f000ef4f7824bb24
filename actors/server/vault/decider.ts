/**
 * The vault's decisions, pure: what storing a manifest and removing an object record, or why
 * not. The commands (commands.ts) check the session, read the images and grants projections,
 * and append what these decide.
 */
import { checkLayout } from "../../peer/vault.ts";
import {
  ForbiddenError,
  type ImageEvent,
  imageEvents,
  NotFoundError,
  ValidationError,
  type VeilEvent,
} from "../../../events/mod.ts";
import {
  chunkOwners,
  chunksOf,
  findImage,
  grantOf,
  type GrantsState,
  type ImageManifest,
  imageOf,
  type ImagesState,
} from "../../../projections/mod.ts";

export type ImageEventMaker = <T extends ImageEvent["type"]>(
  type: T,
  data: Extract<ImageEvent, { type: T }>["data"],
) => VeilEvent;

/**
 * Storing `manifest` for `user`: an `ImageStored` whose owner is the user, whatever the
 * manifest says; its name and type sealed, its layout whole, and none of its chunks another
 * user's (a chunk is its uploader's: naming another's would keep it from garbage collection
 * and earn get tickets for it).
 */
export function decideStore(manifest: unknown, user: string, images: ImagesState, make: ImageEventMaker): VeilEvent {
  if (typeof manifest !== "object" || manifest === null) throw new ValidationError("manifest: expected a map");
  const stored = imageEvents.ImageStored.data.parse({ ...manifest, owner: user });
  // A new manifest names nothing in the clear: `legacy` is only what reading a v1 one gives.
  if (!stored.meta || stored.legacy) {
    throw new ValidationError("manifest: the name and type travel sealed (meta), never in the clear (legacy)");
  }
  try {
    checkLayout(stored);
  } catch (error) {
    throw new ValidationError((error as Error).message);
  }
  const owners = chunkOwners(images);
  const foreign = chunksOf(stored).find((chunk) => [...owners.get(chunk.hash) ?? []].some((owner) => owner !== user));
  if (foreign) throw new ForbiddenError(`chunk ${foreign.hash} belongs to another user's object`);
  return make("ImageStored", stored);
}

/**
 * Removing `image` for `user`: the user's own object, or a grant's copy of theirs that no
 * grant was recorded for (an approval that failed part-way; a recorded grant's copy goes
 * with the grant's closing).
 */
export function decideRemove(
  request: { readonly user: string; readonly image: string },
  images: ImagesState,
  grants: GrantsState,
  make: ImageEventMaker,
): { readonly image: ImageManifest; readonly event: VeilEvent } {
  const copy = imageOf(images, request.image);
  const strayCopy = copy?.owner === request.user && copy.grant !== undefined &&
    grantOf(grants, copy.grant) === undefined;
  const image = strayCopy ? copy : findImage(images, request.user, request.image);
  if (!image) throw new NotFoundError(`no object ${JSON.stringify(request.image)} in your vault`);
  return { image, event: make("ImageRemoved", { owner: request.user, image: image.image }) };
}
