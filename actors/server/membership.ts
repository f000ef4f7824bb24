/**
 * The leader's membership duty: turn what heartbeats say into durable facts. A node heard
 * from but not recorded as joined gets NodeJoined; a node recorded as joined but silent past
 * its role's timeout gets NodeLeft{timeout}. Each is decided against the node's aggregate
 * with the shared decide-and-append loop (expected sequence), and only while this node still
 * holds the latest term.
 */
import type { Clock, EventLog, IdSource, Logger } from "../ports.ts";
import { type ClusterEvent, nodeSubject, veilEvent } from "../../events/mod.ts";
import { decideAndAppend } from "./decide-and-append.ts";
import { type ClusterState, type HealthState, type HeartbeatTimeouts, isAlive } from "../../projections/mod.ts";

export interface MembershipDeps {
  readonly nodeId: string;
  readonly term: number;
  readonly log: EventLog;
  readonly clock: Clock;
  readonly ids: IdSource;
  readonly logger: Logger;
  readonly cluster: () => ClusterState;
  readonly health: () => HealthState;
  readonly heartbeatTimeouts: HeartbeatTimeouts;
  /** When this node became leader: nodes it never heard from get a full timeout first. */
  readonly leaderSince: number;
  /** Checked again before every append: leadership can end in the middle of a round. */
  readonly stillLeading: () => boolean;
}

/** What the leader decides of membership: the facts it sees, and the time. */
export interface MembershipFacts {
  readonly nodeId: string;
  readonly cluster: ClusterState;
  readonly health: HealthState["nodes"];
  readonly heartbeatTimeouts: HeartbeatTimeouts;
  readonly leaderSince: number;
  readonly now: number;
}

export type MembershipEvent = ClusterEvent & { readonly type: "NodeJoined" | "NodeLeft" };

/**
 * The membership decider, pure: a node heard from (alive, not saying goodbye, heard since it
 * left) and not recorded as joined joins; a joined node other than the leader, silent past
 * its role's timeout (counted from when this node began to lead if it never heard it), leaves.
 */
export function decideMembership(
  facts: MembershipFacts,
  make: (type: MembershipEvent["type"], data: MembershipEvent["data"]) => MembershipEvent,
): { node: string; event: MembershipEvent }[] {
  const { nodeId, cluster, health, now, heartbeatTimeouts } = facts;
  const decisions: { node: string; event: MembershipEvent }[] = [];
  for (const [node, seen] of Object.entries(health)) {
    const member = cluster.nodes[node];
    // A node saying goodbye still beats while it stops; and a beat older than its departure
    // says nothing new. Neither makes it a member again.
    const leaving = seen.state === "stopping" || seen.state === "stopped";
    const heardSinceLeaving = member?.status !== "left" || seen.lastSeenAt > member.since;
    if (isAlive(seen, now, heartbeatTimeouts) && member?.status !== "joined" && !leaving && heardSinceLeaving) {
      decisions.push({ node, event: make("NodeJoined", { node, role: seen.role }) });
    }
  }
  for (const [node, member] of Object.entries(cluster.nodes)) {
    if (member.status !== "joined" || node === nodeId) continue;
    const silentSince = health[node]?.lastSeenAt ?? facts.leaderSince;
    if (now - silentSince > heartbeatTimeouts[member.role]) {
      decisions.push({ node, event: make("NodeLeft", { node, role: member.role, reason: "timeout" }) });
    }
  }
  return decisions;
}

export async function reconcileMembership(deps: MembershipDeps): Promise<void> {
  const { nodeId, term, log, clock, ids, logger } = deps;
  const cluster = deps.cluster();
  // Leader-only duties run only while this node holds the latest term the log knows.
  if (cluster.leader?.node !== nodeId || cluster.leader.term !== term) return;
  const now = clock.now();
  const decisions = decideMembership(
    {
      nodeId,
      cluster,
      health: deps.health().nodes,
      heartbeatTimeouts: deps.heartbeatTimeouts,
      leaderSince: deps.leaderSince,
      now,
    },
    (type, data) => veilEvent(type, data as never, { id: ids.next(), at: now, by: nodeId }) as MembershipEvent,
  );

  for (const { node, event } of decisions) {
    if (!deps.stillLeading()) return;
    const subject = nodeSubject(node);
    // Decided again against the node's aggregate as the log has it: our projection may lag,
    // and the node itself (or another leader) may write first.
    let recorded = false;
    await decideAndAppend({
      log,
      subject,
      what: `node ${node}'s membership`,
      load: async () => {
        const last = await log.readLast(subject);
        return { seq: last?.seq ?? 0, says: last?.ok ? last.event.type : undefined };
      },
      decide: ({ says }) => {
        recorded = says !== event.type && deps.stillLeading();
        return { events: recorded ? [event] : [] };
      },
      applied: () => Promise.resolve(),
    }).catch((error: Error) => {
      // Too many writers at once: the next round decides again.
      recorded = false;
      logger.warn("membership not recorded this round", { node, reason: error.message });
    });
    if (recorded) {
      logger.info(event.type === "NodeJoined" ? "recorded a node joining" : "recorded a silent node as gone", {
        node,
        term,
      });
    }
  }
}
