/**
 * The leader's garbage collection duty. Each round it takes the set of chunks that live
 * manifests reference (from the images projection, caught up with the log), pages through
 * every live storage node's chunks, and deletes those no manifest references. Such a chunk
 * belongs to a removed object, a failed upload that could not take it back, or an upload
 * still running, whose manifest is recorded only after all its puts: that last case is why
 * a delete names a grace period, and the node keeps any chunk put within it (a put of a
 * chunk it already holds renews it, so deduplication is safe too). A round deletes a
 * bounded number of chunks, and runs only while this server leads.
 *
 * The same listing audits the other way: a chunk the log records on a node that the node's
 * whole listing lacks (a disk replaced, a damaged copy the node's scrub removed) is recorded
 * lost there, so repair copies it back. Only what was recorded before the listing began is
 * audited: a copy placed during the round is never mistaken for a lost one.
 */
import type { Bus, ChunkEntry, EventLog, IdSource, Logger } from "../../ports.ts";
import { imageSubject, limits, veilEvent } from "../../../events/mod.ts";
import {
  chunksOf,
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
  /** Where lost copies are recorded, and by whom. */
  readonly log: EventLog;
  readonly ids: IdSource;
  readonly nodeId: string;
}

/** Which chunks the log records on `node`, with the objects that record them there. */
function recordedOn(state: ImagesState, node: string): Map<string, string[]> {
  const recorded = new Map<string, string[]>();
  for (const image of Object.values(state.images)) {
    for (const chunk of chunksOf(image)) {
      if (chunk.nodes.includes(node)) recorded.set(chunk.hash, [...(recorded.get(chunk.hash) ?? []), image.image]);
    }
  }
  return recorded;
}

/** What one round did: chunks and bytes deleted, and copies found lost, across every node it reached. */
export interface CollectionReport {
  readonly chunks: number;
  readonly bytes: number;
  readonly lost: number;
}

/** Records as lost the copies `node` should hold and did not list (still recorded there now), at most `budget`. */
async function recordLost(
  deps: CollectorDeps,
  node: string,
  recorded: ReadonlyMap<string, readonly string[]>,
  listed: ReadonlySet<string>,
  budget: number,
): Promise<number> {
  let lost = 0;
  for (const [hash, owners] of recorded) {
    if (listed.has(hash)) continue;
    for (const image of owners) {
      if (lost >= budget || !deps.stillLeading()) return lost;
      const now = deps.images.state.images[image];
      if (!now || !chunksOf(now).some((chunk) => chunk.hash === hash && chunk.nodes.includes(node))) continue;
      deps.logger.warn("a storage node lacks a chunk it is recorded to hold; recorded lost for repair", {
        node,
        chunk: hash,
      });
      await deps.log.append(imageSubject(image), [
        veilEvent("ChunkLost", { image, hash, node }, { id: deps.ids.next(), at: deps.now(), by: deps.nodeId }),
      ]).then(
        () => lost++,
        (error: Error) => deps.logger.warn("a lost copy could not be recorded", { node, reason: error.message }),
      );
    }
  }
  return lost;
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
  let lost = 0;
  for (const node of nodes) {
    const recorded = recordedOn(images.state, node);
    const listed = new Set<string>();
    let after: string | undefined;
    let complete = false;
    for (;;) {
      if (!deps.stillLeading() || chunks >= limits.gcDeletesPerRound) return { chunks, bytes, lost };
      let page: ChunkEntry[];
      try {
        page = await storeRequest(bus, node, "list", { ...(after ? { after } : {}), limit: limits.chunkListPageMax });
      } catch (error) {
        logger.warn("a storage node's chunks could not be listed", { node, reason: (error as Error).message });
        break;
      }
      for (const entry of page) {
        listed.add(entry.hash);
        // The node decides with its own clock; this only spares it requests it would refuse.
        if (referenced.has(entry.hash) || entry.touchedAtMs > now - graceMs) continue;
        if (!deps.stillLeading() || chunks >= limits.gcDeletesPerRound) return { chunks, bytes, lost };
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
      if (page.length < limits.chunkListPageMax) {
        complete = true;
        break;
      }
      after = page.at(-1)!.hash;
    }
    if (complete) lost += await recordLost(deps, node, recorded, listed, limits.auditLostPerRound - lost);
  }
  return { chunks, bytes, lost };
}
