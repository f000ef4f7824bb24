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
  readonly bytesUsed?: number;
  readonly capacityBytes?: number;
  /** When its last heartbeat arrived, epoch ms. */
  readonly lastSeenAt: number;
}

export interface HealthState {
  readonly nodes: Readonly<Record<string, NodeHealth>>;
}

export interface ObservedHeartbeat extends Omit<NodeHealth, "lastSeenAt"> {
  readonly node: string;
}

export const heartbeatTimeoutMs: Readonly<Record<NodeRole, number>> = {
  server: limits.serverHeartbeatTimeoutMs,
  storage: limits.serverHeartbeatTimeoutMs,
  peer: limits.peerHeartbeatTimeoutMs,
};

export function emptyHealth(): HealthState {
  return { nodes: {} };
}

/** Records a heartbeat. A table at its bound only takes heartbeats from nodes it knows. */
export function observeHeartbeat(state: HealthState, heartbeat: ObservedHeartbeat, at: number): HealthState {
  const known = Object.hasOwn(state.nodes, heartbeat.node);
  if (!known && Object.keys(state.nodes).length >= limits.clusterNodesMax) return state;
  const { node, ...health } = heartbeat;
  return { nodes: { ...state.nodes, [node]: { ...health, lastSeenAt: at } } };
}

export function isAlive(health: NodeHealth, now: number): boolean {
  return now - health.lastSeenAt <= heartbeatTimeoutMs[health.role];
}

/** Nodes silent for longer than their role's timeout, forgotten after ten times that. */
export function forgetLongGone(state: HealthState, now: number): HealthState {
  const nodes = Object.entries(state.nodes).filter(([, health]) =>
    now - health.lastSeenAt <= 10 * heartbeatTimeoutMs[health.role]
  );
  return nodes.length === Object.keys(state.nodes).length ? state : { nodes: Object.fromEntries(nodes) };
}
