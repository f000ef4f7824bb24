/**
 * The leader's garbage collection duty. Each round it takes the set of chunks that live
 * manifests reference (from the images projection, caught up with the log), pages through
 * every live storage node's chunks, and deletes those no manifest references. Such a chunk
 * belongs to a removed object, a failed upload that could not take it back, or an upload
 * still running, whose manifest is recorded only after all its puts: that last case is why
 * a delete names a grace period, and the node keeps any chunk put within it (a put of a
 * chunk it already holds renews it, so deduplication is safe too). A round deletes a
 * bounded number of chunks, and runs only while this server leads.
 */
import type { Bus, ChunkEntry, Logger } from "../../ports.ts";
import { limits } from "../../../events/mod.ts";
import {
  type HealthState,
  type HeartbeatTimeouts,
  type ImagesState,
  isAlive,
  referencedChunks,
} from "../../../projections/mod.ts";
import type { Projector } from "../projector.ts";
import { storeRequest } from "../../storage-node/client.ts";

export interface CollectorDeps {
  readonly bus: Bus;
  readonly logger: Logger;
  readonly images: Projector<ImagesState>;
  readonly health: () => HealthState;
  readonly heartbeatTimeouts: HeartbeatTimeouts;
  readonly now: () => number;
  /** A chunk put within this long is kept, referenced or not (VEIL_GC_GRACE_MS). */
  readonly graceMs: number;
  readonly stillLeading: () => boolean;
}

/** What one round did: chunks and bytes deleted, across every node it reached. */
export interface CollectionReport {
  readonly chunks: number;
  readonly bytes: number;
}

export async function collectRound(deps: CollectorDeps): Promise<CollectionReport> {
  const { bus, logger, images, heartbeatTimeouts, graceMs } = deps;
  // The reference set must include every manifest recorded before the round starts.
  await images.caughtUp();
  const referenced = referencedChunks(images.state);
  const now = deps.now();
  const nodes = Object.entries(deps.health().nodes)
    .filter(([, view]) => view.role === "storage" && isAlive(view, now, heartbeatTimeouts))
    .map(([node]) => node)
    .sort();
  let chunks = 0;
  let bytes = 0;
  for (const node of nodes) {
    let after: string | undefined;
    for (;;) {
      if (!deps.stillLeading() || chunks >= limits.gcDeletesPerRound) return { chunks, bytes };
      let page: ChunkEntry[];
      try {
        page = await storeRequest(bus, node, "list", { ...(after ? { after } : {}), limit: limits.chunkListPageMax });
      } catch (error) {
        logger.warn("a storage node's chunks could not be listed", { node, reason: (error as Error).message });
        break;
      }
      for (const entry of page) {
        // The node decides with its own clock; this only spares it requests it would refuse.
        if (referenced.has(entry.hash) || entry.touchedAtMs > now - graceMs) continue;
        if (!deps.stillLeading() || chunks >= limits.gcDeletesPerRound) return { chunks, bytes };
        try {
          const { freed } = await storeRequest(bus, node, "delete", { hash: entry.hash, idleMs: graceMs });
          if (freed > 0) {
            chunks++;
            bytes += freed;
          }
        } catch (error) {
          logger.warn("an unreferenced chunk was not deleted", { node, reason: (error as Error).message });
        }
      }
      if (page.length < limits.chunkListPageMax) break;
      after = page.at(-1)!.hash;
    }
  }
  return { chunks, bytes };
}
