/**
 * How much of the storage nodes one user may take: what the user's objects hold (every
 * replica) plus what the user's placements of the last ticket lifetime may still put, stored
 * or not. A placement's put tickets are good for that long, so this bounds the bytes one
 * account can put on the nodes without ever naming them in a manifest (junk that garbage
 * collection would free only after its grace period). An upload's bytes count twice for at
 * most a ticket's lifetime after it is stored: near the quota, that errs on the cluster's side.
 * Kept by the leader in memory; a new leader starts with the stored bytes alone.
 */
import { ForbiddenError } from "../../events/mod.ts";
import { chunksOf, type ImagesState } from "../../projections/images.ts";

export class StorageQuota {
  readonly #placed = new Map<string, { readonly at: number; readonly bytes: number }[]>();

  constructor(readonly bytesMax: number, readonly windowMs: number) {}

  /** Counts a placement of `bytes` (all replicas) for `user`, or refuses it, counting nothing. */
  reserve(user: string, bytes: number, images: ImagesState, now: number): void {
    const recent = (this.#placed.get(user) ?? []).filter((placement) => placement.at > now - this.windowMs);
    const used = storedBytesOf(images, user) + recent.reduce((sum, placement) => sum + placement.bytes, 0);
    if (used + bytes > this.bytesMax) {
      throw new ForbiddenError(
        `${user}'s storage quota is ${this.bytesMax} bytes, and ${used} are used or being uploaded; ` +
          `remove files, or ask the operator for more (VEIL_QUOTA)`,
      );
    }
    recent.push({ at: now, bytes });
    this.#placed.set(user, recent);
  }
}

/** What a user's objects hold on the storage nodes, every replica counted. */
export function storedBytesOf(images: ImagesState, user: string): number {
  let bytes = 0;
  for (const image of Object.values(images.images)) {
    if (image.owner !== user) continue;
    for (const chunk of chunksOf(image)) bytes += chunk.bytes * chunk.nodes.length;
  }
  return bytes;
}
