/**
 * What veil's processes say about themselves and to each other, outside commands. Election traffic goes over `veil.election.>` and
 * heartbeats over `veil.hb.<role>.<id>`; both streams are captured by VEIL_CLUSTER, so the
 * history of who was alive and who led can be replayed. Every message is validated before
 * it reaches a machine: anything malformed is dropped with a log line.
 */
import { nodeRoles } from "../cluster.ts";
import { limits } from "../limits.ts";
import { array, boolean, bytes, type Infer, integer, nullable, object, oneOf, optional, string } from "../schema.ts";
import { subjectToken } from "../subjects.ts";

const nodeId = string({ lengthMin: 1, lengthMax: limits.subjectTokenLengthMax, pattern: /^[A-Za-z0-9_-]+$/ });
const term = integer({ min: 0 });

export const electionKinds = ["election", "answer", "coordinator", "alive", "resign"] as const;
export type ElectionKind = (typeof electionKinds)[number];

/**
 * - election: `from` asks higher nodes whether any is alive (broadcast);
 * - answer: a higher node tells `to` it is alive and will take over (addressed);
 * - coordinator: `from` won `term` (broadcast);
 * - alive: the leader of `term` is alive (broadcast, frequent);
 * - resign: the leader of `term` is stopping: elect at once (broadcast).
 */
export const electionMessage = object({
  kind: oneOf(electionKinds),
  from: nodeId,
  term,
  to: optional(nodeId),
});
export type ElectionMessage = Infer<typeof electionMessage>;

export function electionSubject(kind: ElectionKind, to?: string): string {
  return to === undefined ? `veil.election.${kind}` : `veil.election.${kind}.${subjectToken(to, "node id")}`;
}

export const heartbeat = object({
  node: nodeId,
  role: oneOf(nodeRoles),
  /** What the node is doing, e.g. follower or leader for servers, ready for storage nodes. */
  state: string({ lengthMin: 1, lengthMax: 32 }),
  term,
  leader: optional(nodeId),
  /** Work in progress (requests being served, transfers). */
  inFlight: integer({ min: 0 }),
  memoryBytes: integer({ min: 0 }),
  /** The sender's clock when it sent this beat; a beat not newer than the last one is a replay. */
  sentAt: integer({ min: 0 }),
  /** Servers only: how long their projections have been behind the log, and how far their clock is from the broker's. */
  lagMs: optional(integer({ min: 0 })),
  clockOffsetMs: optional(integer()),
  /** Storage nodes only. */
  bytesUsed: optional(integer({ min: 0 })),
  capacityBytes: optional(integer({ min: 0 })),
  chunks: optional(integer({ min: 0 })),
  /** Peers only (published by the server that took their presence): this run's note and answer keys. */
  noteKey: optional(bytes({ lengthMin: 32, lengthMax: 32 })),
  answerKey: optional(bytes({ lengthMin: 32, lengthMax: 32 })),
});
export type Heartbeat = Infer<typeof heartbeat>;

export function heartbeatSubject(role: Heartbeat["role"], node: string): string {
  return `veil.hb.${role}.${subjectToken(node, "node id")}`;
}

/** A node as `cluster.nodes` describes it (`veil nodes`, `veil topology`, `veil health`). */
export const nodeView = object({
  id: string({ lengthMin: 1, lengthMax: limits.subjectTokenLengthMax }),
  role: oneOf(nodeRoles),
  state: string({ lengthMin: 1, lengthMax: 32 }),
  alive: boolean(),
  leader: boolean(),
  term,
  lastHeartbeatAgeMs: nullable(integer()),
  membership: oneOf(["joined", "left", "unrecorded"]),
  inFlight: integer({ min: 0 }),
  memoryBytes: integer({ min: 0 }),
  lagMs: optional(integer({ min: 0 })),
  clockOffsetMs: optional(integer()),
  bytesUsed: optional(integer({ min: 0 })),
  capacityBytes: optional(integer({ min: 0 })),
  chunks: optional(integer({ min: 0 })),
});
export type NodeView = Infer<typeof nodeView>;

/** `cluster.nodes`: every node a server knows of, and who leads. */
export const nodesReply = object({
  answeredBy: nodeId,
  leader: nullable(object({ node: nodeId, term, since: optional(integer({ min: 0 })) })),
  term,
  nodes: array(nodeView, { lengthMax: 100_000 }),
});
export type NodesReply = Infer<typeof nodesReply>;
