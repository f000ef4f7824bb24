/**
 * Who is alive, from heartbeats (`veil.hb.<role>.<id>`). Pure: the host feeds it each
 * heartbeat with the time it arrived and asks about liveness at a time it names. Durable
 * membership (joins and departures) is recorded in the log by the leader, from this view.
 */
import { limits, type NodeRole } from "../events/mod.ts";

export interface NodeHealth {
  readonly role: NodeRole;
  readonly state: string;
  readonly term: number;
  readonly leader?: string;
  readonly inFlight: number;
  readonly memoryBytes: number;
  /** Servers: how long their projections have been behind the log (0: caught up). */
  readonly lagMs?: number;
  /** Servers: how far their host's clock is from the broker's, when measured. */
  readonly clockOffsetMs?: number;
  readonly bytesUsed?: number;
  readonly capacityBytes?: number;
  /** Storage nodes: chunks held. */
  readonly chunks?: number;
  /** Peers: the keys this run of the peer went online with (notes are sealed to one, previews signed by the other). */
  readonly noteKey?: Uint8Array;
  readonly answerKey?: Uint8Array;
  /** The sender's clock when it sent its last heartbeat. */
  readonly sentAt: number;
  /** When its last heartbeat arrived, epoch ms (the receiver's clock: liveness is judged by it). */
  readonly lastSeenAt: number;
}

export interface HealthState {
  readonly nodes: Readonly<Record<string, NodeHealth>>;
}

export interface ObservedHeartbeat extends Omit<NodeHealth, "lastSeenAt"> {
  readonly node: string;
}

/** How long each role may stay silent before it counts as gone (configurable; these are the defaults). */
export type HeartbeatTimeouts = Readonly<Record<NodeRole, number>>;

export const defaultHeartbeatTimeouts: HeartbeatTimeouts = {
  server: limits.serverHeartbeatTimeoutMs,
  storage: limits.serverHeartbeatTimeoutMs,
  peer: limits.peerHeartbeatTimeoutMs,
};

export function emptyHealth(): HealthState {
  return { nodes: {} };
}

/**
 * Records a heartbeat. One not newer than the node's last (a replay, or a duplicate) changes
 * nothing, and a table at its bound only takes heartbeats from nodes it knows.
 */
export function observeHeartbeat(
  state: HealthState,
  heartbeat: ObservedHeartbeat,
  at: number,
  nodesMax: number = limits.clusterNodesMax,
): HealthState {
  const known = state.nodes[heartbeat.node];
  if (known && heartbeat.sentAt <= known.sentAt) return state;
  if (!known && Object.keys(state.nodes).length >= nodesMax) return state;
  const { node, ...health } = heartbeat;
  return { nodes: { ...state.nodes, [node]: { ...health, lastSeenAt: at } } };
}

export function isAlive(health: NodeHealth, now: number, timeouts: HeartbeatTimeouts): boolean {
  return now - health.lastSeenAt <= timeouts[health.role];
}

/** Nodes silent for longer than their role's timeout, forgotten after ten times that. */
export function forgetLongGone(state: HealthState, now: number, timeouts: HeartbeatTimeouts): HealthState {
  const nodes = Object.entries(state.nodes).filter(([, health]) =>
    now - health.lastSeenAt <= 10 * timeouts[health.role]
  );
  return nodes.length === Object.keys(state.nodes).length ? state : { nodes: Object.fromEntries(nodes) };
}
