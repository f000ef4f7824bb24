/**
 * The leader's membership duty: turn what heartbeats say into durable facts. A node heard
 * from but not recorded as joined gets NodeJoined; a node recorded as joined but silent past
 * its role's timeout gets NodeLeft{timeout}. Each is decided against the node's aggregate
 * (expected sequence), and only while this node still holds the latest term.
 */
import type { Clock, EventLog, IdSource, Logger } from "../ports.ts";
import { ConcurrencyError, nodeSubject, veilEvent } from "../../events/mod.ts";
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

export async function reconcileMembership(deps: MembershipDeps): Promise<void> {
  const { nodeId, term, log, clock, ids, logger } = deps;
  const cluster = deps.cluster();
  // Leader-only duties run only while this node holds the latest term the log knows.
  if (cluster.leader?.node !== nodeId || cluster.leader.term !== term) return;
  const now = clock.now();
  const health = deps.health().nodes;
  const origin = () => ({ id: ids.next(), at: now, by: nodeId });

  const decisions: { node: string; event: ReturnType<typeof veilEvent> }[] = [];
  for (const [node, seen] of Object.entries(health)) {
    const member = cluster.nodes[node];
    // A node saying goodbye still beats while it stops; and a beat older than its departure
    // says nothing new. Neither makes it a member again.
    const leaving = seen.state === "stopping" || seen.state === "stopped";
    const heardSinceLeaving = member?.status !== "left" || seen.lastSeenAt > member.since;
    if (isAlive(seen, now, deps.heartbeatTimeouts) && member?.status !== "joined" && !leaving && heardSinceLeaving) {
      decisions.push({ node, event: veilEvent("NodeJoined", { node, role: seen.role }, origin()) });
    }
  }
  for (const [node, member] of Object.entries(cluster.nodes)) {
    if (member.status !== "joined" || node === nodeId) continue;
    const seen = health[node];
    const silentSince = seen?.lastSeenAt ?? deps.leaderSince;
    if (now - silentSince > deps.heartbeatTimeouts[member.role]) {
      decisions.push({ node, event: veilEvent("NodeLeft", { node, role: member.role, reason: "timeout" }, origin()) });
    }
  }

  for (const { node, event } of decisions) {
    if (!deps.stillLeading()) return;
    const subject = nodeSubject(node);
    const last = await log.readLast(subject);
    // The aggregate already says so (our projection lags): nothing to decide.
    if (last?.ok && last.event.type === event.type) continue;
    try {
      await log.append(subject, [event], { expectedSubjectSeq: last?.seq ?? 0 });
      logger.info(event.type === "NodeJoined" ? "recorded a node joining" : "recorded a silent node as gone", {
        node,
        term,
      });
    } catch (error) {
      // The node itself (or another leader) wrote first; the next round decides again.
      if (!(error instanceof ConcurrencyError)) throw error;
    }
  }
}
