/** The membership decider: given cluster events and heartbeats / when the leader looks / then joins and leaves. */
import { describe, expect, it } from "vitest";
import { decideMembership, type MembershipEvent } from "../../actors/server/membership.ts";
import { type ClusterEvent, veilEvent } from "../../events/mod.ts";
import {
  clusterProjection,
  type ClusterState,
  defaultHeartbeatTimeouts,
  emptyHealth,
  type HealthState,
  observeHeartbeat,
} from "../../projections/mod.ts";
import { elected, joined, left, origin } from "../support/events.ts";
import { decider } from "../support/given-when-then.ts";

const t0 = 1_800_000_000_000;
const leaderSince = t0 - 60_000;

/** What the leader sees: the heartbeats it heard (node, role, when, and the state each said). */
type Looking = { readonly now: number; readonly beats?: readonly [string, "server" | "storage", number, string?][] };

const given = decider<ClusterState, ClusterEvent, Looking>({
  initial: clusterProjection.initial(),
  evolve: (state, event) => clusterProjection.evolve(state, event),
  decide: ({ now, beats = [] }, cluster) => {
    let health: HealthState = emptyHealth();
    for (const [node, role, at, state = "ready"] of beats) {
      health = observeHeartbeat(health, { node, role, state, sentAt: at, term: 1, inFlight: 0, memoryBytes: 0 }, at);
    }
    const make = (type: MembershipEvent["type"], data: MembershipEvent["data"]) =>
      veilEvent(type, data as never, origin(now)) as MembershipEvent;
    return decideMembership(
      { nodeId: "s1", cluster, health: health.nodes, heartbeatTimeouts: defaultHeartbeatTimeouts, leaderSince, now },
      make,
    ).map(({ event }) => event);
  },
});

describe("membership decisions", () => {
  it("records a node heard from and not yet joined, with the role its heartbeat says", () => {
    given(joined("s1", "server", t0 - 1_000), elected("s1", 1))
      .when({ now: t0, beats: [["store-1", "storage", t0 - 100]] })
      .then(["NodeJoined"], ([event]) => expect(event!.data).toEqual({ node: "store-1", role: "storage" }));
  });

  it("records nothing for a joined node that beats, nor for one saying goodbye", () => {
    given(joined("s1"), joined("store-1", "storage"), elected("s1", 1))
      .when({ now: t0, beats: [["store-1", "storage", t0 - 100], ["store-2", "storage", t0 - 100, "stopping"]] })
      .then([]);
  });

  it("records a joined node silent past its role's timeout as gone, never the leader itself", () => {
    const silentFor = defaultHeartbeatTimeouts.storage + 1;
    given(joined("s1"), joined("store-1", "storage"), elected("s1", 1))
      .when({ now: t0, beats: [["store-1", "storage", t0 - silentFor]] })
      .then(
        ["NodeLeft"],
        ([event]) => expect(event!.data).toEqual({ node: "store-1", role: "storage", reason: "timeout" }),
      );
  });

  it("gives a node it never heard a full timeout from when it began to lead", () => {
    const member = given(joined("s1"), joined("s2"), elected("s1", 1));
    member.when({ now: leaderSince + defaultHeartbeatTimeouts.server - 1 }).then([]);
    member.when({ now: leaderSince + defaultHeartbeatTimeouts.server + 1 }).then(["NodeLeft"]);
  });

  it("takes no beat older than a node's departure as a return", () => {
    given(
      joined("s1"),
      joined("store-1", "storage", t0 - 5_000),
      left("store-1", "storage", t0 - 1_000),
      elected("s1", 1),
    )
      .when({ now: t0, beats: [["store-1", "storage", t0 - 2_000]] })
      .then([]);
  });
});
