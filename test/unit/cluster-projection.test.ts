import { describe, expect, it } from "vitest";
import { clusterProjection, type ClusterState, fold } from "../../projections/mod.ts";
import type { VeilEvent } from "../../events/mod.ts";
import { elected, joined, left } from "../support/events.ts";

const given = (events: VeilEvent[]) => ({
  then: (state: ClusterState) => expect(fold(clusterProjection, events)).toEqual(state),
});

describe("cluster projection", () => {
  it("starts empty", () => {
    given([]).then({ nodes: {}, leader: null, term: 0, elected: null });
  });

  it("records joins and departures with their times", () => {
    given([joined("s1", "server", 10), joined("st1", "storage", 11), left("s1", "server", 20)]).then({
      nodes: {
        s1: { role: "server", status: "left", since: 20, leftReason: "shutdown" },
        st1: { role: "storage", status: "joined", since: 11 },
      },
      leader: null,
      term: 0,
      elected: null,
    });
  });

  it("follows leaders term by term and ignores a stale term", () => {
    given([elected("s1", 1, 5), elected("s2", 2, 6), elected("s1", 1, 7)]).then({
      nodes: {},
      leader: { node: "s2", term: 2, since: 6 },
      term: 2,
      elected: { node: "s2", term: 2 },
    });
  });

  it("clears the leader when it leaves, but keeps who won the latest term (and the term)", () => {
    given([joined("s2", "server", 1), elected("s2", 3, 2), left("s2", "server", 3), elected("s1", 3, 4)]).then({
      nodes: { s2: { role: "server", status: "left", since: 3, leftReason: "shutdown" } },
      leader: null,
      term: 3,
      elected: { node: "s2", term: 3 },
    });
  });

  it("does not mutate the state it is given", () => {
    const before = fold(clusterProjection, [joined("s1")]);
    const snapshot = structuredClone(before);
    clusterProjection.evolve(before, left("s1"));
    expect(before).toEqual(snapshot);
  });
});
