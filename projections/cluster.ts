/**
 * Cluster membership as recorded in the log: which nodes joined and left, and who led
 * which term. `veil state cluster --at <time>` answers "who was a member, and who led,
 * at that moment". (Liveness from heartbeats joins this read model with the cluster issue.)
 */
import { type ClusterEvent, clusterEvents, type NodeRole, type VeilEvent } from "../events/mod.ts";
import type { Projection } from "./projection.ts";

export interface NodeMembership {
  readonly role: NodeRole;
  readonly status: "joined" | "left";
  /** When the node last joined or left (event time, epoch ms). */
  readonly since: number;
  readonly leftReason?: "shutdown" | "timeout";
}

export interface ClusterState {
  readonly nodes: Readonly<Record<string, NodeMembership>>;
  /** The node leading the latest term, or null while nobody does (it left). */
  readonly leader: { readonly node: string; readonly term: number; readonly since: number } | null;
  /** The latest term ever won; it outlives a leader that left. */
  readonly term: number;
  /** Who won the latest term, even after it left: what election messages are checked against. */
  readonly elected: { readonly node: string; readonly term: number } | null;
}

function isClusterEvent(event: VeilEvent): event is ClusterEvent {
  return Object.hasOwn(clusterEvents, event.type);
}

export const clusterProjection: Projection<ClusterState> = {
  name: "cluster",
  description: "cluster membership (nodes joined and left) and the current leader and term",
  version: 2,
  initial: () => ({ nodes: {}, leader: null, term: 0, elected: null }),
  evolve(state, event) {
    if (!isClusterEvent(event)) return state;
    switch (event.type) {
      case "NodeJoined":
        return {
          ...state,
          nodes: { ...state.nodes, [event.data.node]: { role: event.data.role, status: "joined", since: event.at } },
        };
      case "NodeLeft":
        return {
          ...state,
          nodes: {
            ...state.nodes,
            [event.data.node]: {
              role: event.data.role,
              status: "left",
              since: event.at,
              leftReason: event.data.reason,
            },
          },
          // A leader that leaves no longer leads; the next LeaderElected names its successor.
          leader: state.leader?.node === event.data.node ? null : state.leader,
        };
      case "LeaderElected":
        // Terms only move forward: a stale record never replaces a newer leader.
        if (event.data.term <= state.term) return state;
        return {
          ...state,
          leader: { node: event.data.node, term: event.data.term, since: event.at },
          term: event.data.term,
          elected: { node: event.data.node, term: event.data.term },
        };
      case "ClusterKeyRecorded":
        return state;
      default:
        return assertNever(event);
    }
  },
};

function assertNever(event: never): never {
  throw new Error(`programmer error: unhandled cluster event ${(event as ClusterEvent).type}`);
}
