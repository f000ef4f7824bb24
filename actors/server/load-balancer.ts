/**
 * Where chunks go. The leader places each chunk on R distinct storage nodes that are
 * healthy and have room, by one of two policies:
 * - round-robin: the next R nodes after a cursor the leader keeps, in id order;
 * - least-loaded: the R nodes with the fewest projected bytes, i.e. bytes used plus an
 *   estimate of what their in-flight operations are writing (one chunk each).
 * Pure: the leader passes the candidates it knows from heartbeats and keeps the cursor.
 */
import { limits, UnavailableError, ValidationError } from "../../events/mod.ts";
import { compareNodeIds } from "./node-ids.ts";
import type { placementPolicies } from "../../events/mod.ts";

export type PlacementPolicy = (typeof placementPolicies)[number];

export interface StorageCandidate {
  readonly node: string;
  /** Heard from within its heartbeat timeout. */
  readonly healthy: boolean;
  readonly bytesUsed: number;
  readonly capacityBytes: number;
  readonly inFlight: number;
}

export interface PlacementRequest {
  readonly bytes: number;
  readonly replicas: number;
  readonly policy: PlacementPolicy;
  /** Round-robin position; the leader stores the returned one for the next placement. */
  readonly cursor: number;
}

export function place(
  candidates: readonly StorageCandidate[],
  request: PlacementRequest,
): { nodes: string[]; cursor: number } {
  const { bytes, replicas, policy, cursor } = request;
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new ValidationError(`bytes must be a whole number, got ${bytes}`);
  }
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > limits.replicasMax) {
    throw new ValidationError(`replicas must be from 1 to ${limits.replicasMax}, got ${replicas}`);
  }
  const eligible = candidates
    .filter((candidate) => candidate.healthy && candidate.capacityBytes - candidate.bytesUsed >= bytes)
    .sort((a, b) => compareNodeIds(a.node, b.node));
  if (eligible.length < replicas) {
    throw new UnavailableError(
      `placing ${bytes} bytes on ${replicas} distinct nodes needs ${replicas} healthy storage nodes with room; ` +
        `${eligible.length} of ${candidates.length} known qualify`,
    );
  }
  if (policy === "round-robin") {
    const start = cursor % eligible.length;
    const nodes = Array.from({ length: replicas }, (_, offset) => eligible[(start + offset) % eligible.length]!.node);
    return { nodes, cursor: cursor + 1 };
  }
  const projected = (candidate: StorageCandidate) => candidate.bytesUsed + candidate.inFlight * limits.chunkBytes;
  const nodes = [...eligible]
    .sort((a, b) => projected(a) - projected(b) || compareNodeIds(a.node, b.node))
    .slice(0, replicas)
    .map((candidate) => candidate.node);
  return { nodes, cursor };
}
