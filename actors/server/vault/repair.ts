/**
 * The leader's repair duty. Each round it looks at every stored chunk and counts its live
 * replicas: a holder counts unless it is a storage node silent for longer than the grace
 * period. A chunk with fewer than its object's replicas is copied from a live holder (read,
 * checked against its hash) to a healthy node with room that does not hold it yet, and the
 * copy is recorded as `ChunkReplicated`. A round copies a bounded number of chunks, a few at
 * a time, and runs only while this server leads. A node that comes back still holds its
 * chunks: they are then over-replicated, never lost. The leader signs its own tickets for
 * the get and the put, as it would for anyone it lets read or place a chunk.
 */
import { sha256Hex } from "../../crypto/mod.ts";
import type { Bus, ChunkHasher, Clock, EventLog, IdSource, Logger } from "../../ports.ts";
import { place } from "../load-balancer.ts";
import type { TicketIssuer } from "../../storage-node/tickets.ts";
import { imageSubject, limits, veilEvent } from "../../../events/mod.ts";
import {
  chunksOf,
  type HealthState,
  type HeartbeatTimeouts,
  type ImagesState,
  isAlive,
} from "../../../projections/mod.ts";
import type { Projector } from "../projector.ts";
import { storeRequest } from "../../storage-node/client.ts";

export interface RepairDeps {
  readonly nodeId: string;
  readonly bus: Bus;
  readonly log: EventLog;
  readonly clock: Clock;
  readonly ids: IdSource;
  readonly logger: Logger;
  readonly images: Projector<ImagesState>;
  readonly health: () => HealthState;
  readonly heartbeatTimeouts: HeartbeatTimeouts;
  readonly graceMs: number;
  /** When this server became leader: a node it never heard from is given the grace period from then. */
  readonly leaderSince: number;
  readonly stillLeading: () => boolean;
  readonly tickets: TicketIssuer;
  /** How a copied chunk is checked before it is put (Web Crypto's SHA-256 unless given). */
  readonly chunkHash?: ChunkHasher;
}

interface Repair {
  readonly image: string;
  readonly hash: string;
  readonly bytes: number;
  readonly from: readonly string[];
  readonly holders: readonly string[];
}

/** Where the next round starts looking, so chunks that keep failing do not starve the rest. */
export interface RepairCursor {
  offset: number;
}

export async function repairRound(deps: RepairDeps, cursor: RepairCursor = { offset: 0 }): Promise<number> {
  const { nodeId, bus, log, clock, ids, logger, images, heartbeatTimeouts, graceMs, tickets } = deps;
  // Decide on the log as it stands: a lagging projection would copy what was copied already.
  await images.caughtUp();
  const now = clock.now();
  const health = deps.health().nodes;
  const gone = (node: string) => {
    const seen = Object.hasOwn(health, node) ? health[node] : undefined;
    const silentSince = seen ? seen.lastSeenAt : deps.leaderSince;
    return !(seen && isAlive(seen, now, heartbeatTimeouts)) && now - silentSince > graceMs;
  };
  const live = (node: string) => {
    const seen = Object.hasOwn(health, node) ? health[node] : undefined;
    return seen !== undefined && isAlive(seen, now, heartbeatTimeouts);
  };

  const short: Repair[] = [];
  let unrepairable = 0;
  const seen = new Set<string>();
  for (const image of Object.values(images.state.images)) {
    for (const chunk of chunksOf(image)) {
      const key = `${image.image}/${chunk.hash}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const holders = chunk.nodes.filter((node) => !gone(node));
      if (holders.length >= image.replicas) continue;
      const from = holders.filter(live);
      if (from.length === 0) unrepairable++;
      else short.push({ image: image.image, hash: chunk.hash, bytes: chunk.bytes, from, holders: chunk.nodes });
    }
  }
  if (unrepairable > 0) logger.warn("chunks with no live replica to repair from", { chunks: unrepairable });
  // A bounded share a round, starting where the last round stopped.
  const start = short.length === 0 ? 0 : cursor.offset % short.length;
  const wanted = [...short.slice(start), ...short.slice(0, start)].slice(0, limits.repairCopiesPerRound);
  cursor.offset = start + wanted.length;
  // Copies placed this round count toward a node's load, so they do not all land on one node.
  const placedBytes = new Map<string, number>();

  let copied = 0;
  let next = 0;
  const lane = async () => {
    while (next < wanted.length && deps.stillLeading()) {
      const repair = wanted[next++]!;
      try {
        if (await copy(repair)) copied++;
      } catch (error) {
        logger.warn("a chunk was not repaired this round", { chunk: repair.hash, reason: (error as Error).message });
      }
    }
  };

  async function copy(repair: Repair): Promise<boolean> {
    const candidates = Object.entries(health)
      .filter(([node, view]) => view.role === "storage" && !repair.holders.includes(node))
      .map(([node, view]) => ({
        node,
        healthy: isAlive(view, now, heartbeatTimeouts),
        bytesUsed: (view.bytesUsed ?? 0) + (placedBytes.get(node) ?? 0),
        capacityBytes: view.capacityBytes ?? 0,
        inFlight: view.inFlight,
      }));
    const [target] = place(candidates, { bytes: repair.bytes, replicas: 1, policy: "least-loaded", cursor: 0 }).nodes;
    placedBytes.set(target!, (placedBytes.get(target!) ?? 0) + repair.bytes);
    let bytes: Uint8Array | undefined;
    for (const source of repair.from) {
      try {
        const ticket = tickets.get([{ hash: repair.hash, nodes: [source] }])[0]!.ticket;
        const got = await storeRequest(bus, source, "get", { hash: repair.hash, ticket });
        if ((await (deps.chunkHash ?? sha256Hex)(got)) === repair.hash) {
          bytes = got;
          break;
        }
      } catch (error) {
        logger.warn("a repair source failed", { node: source, chunk: repair.hash, reason: (error as Error).message });
        // The node said it has it no more (it removes a damaged copy when it finds one): record that.
        const code = (error as { code?: string }).code;
        if ((code === "integrity" || code === "not-found") && deps.stillLeading()) {
          await log.append(imageSubject(repair.image), [
            veilEvent("ChunkLost", { image: repair.image, hash: repair.hash, node: source }, {
              id: ids.next(),
              at: clock.now(),
              by: nodeId,
            }),
          ]);
        }
      }
    }
    if (!bytes) return false;
    const ticket = tickets.put(target!, [{ hash: repair.hash, bytes: bytes.byteLength }]);
    await storeRequest(bus, target!, "put", { hash: repair.hash, bytes, ticket });
    if (!deps.stillLeading()) return false;
    await log.append(imageSubject(repair.image), [
      veilEvent("ChunkReplicated", { image: repair.image, hash: repair.hash, node: target! }, {
        id: ids.next(),
        at: clock.now(),
        by: nodeId,
      }),
    ]);
    logger.info("chunk re-replicated", { chunk: repair.hash, to: target });
    return true;
  }

  await Promise.all(Array.from({ length: Math.min(limits.repairCopiesInFlight, wanted.length) }, lane));
  return copied;
}
