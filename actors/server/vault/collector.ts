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
 * The same listing audits the other way (audit.ts): a chunk the log records on a node that
 * the node's whole listing lacks is, once confirmed, recorded lost there, so repair copies it
 * back. Only what was recorded before the listing began is audited.
 */
import type { Bus, ChunkEntry, EventLog, IdSource, Logger } from "../../ports.ts";
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
import { confirmLost, ListingAudit, recordedByNode } from "./audit.ts";

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

/** What one round did: chunks and bytes deleted, and copies found lost, across every node it reached. */
export interface CollectionReport {
  readonly chunks: number;
  readonly bytes: number;
  readonly lost: number;
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
  const recorded = recordedByNode(images.state);
  for (const node of nodes) {
    const audit = new ListingAudit(recorded.get(node) ?? [], limits.auditLostPerRound - lost);
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
      audit.page(page);
      for (const entry of page) {
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
    if (!complete) continue;
    for (const hash of audit.end()) {
      if (!deps.stillLeading()) break;
      lost += await confirmLost(deps, node, hash).catch((error: Error) => {
        logger.warn("a lost copy could not be recorded", { node, chunk: hash, reason: error.message });
        return 0;
      });
    }
  }
  return { chunks, bytes, lost };
}
