import { describe, expect, it } from "vitest";
import { UnavailableError, ValidationError } from "../../events/mod.ts";
import { place, type StorageCandidate } from "../../actors/server/load-balancer.ts";

const gib = 1024 ** 3;
const node = (id: string, overrides: Partial<StorageCandidate> = {}): StorageCandidate => ({
  node: id,
  healthy: true,
  bytesUsed: 0,
  capacityBytes: 10 * gib,
  inFlight: 0,
  ...overrides,
});

describe("load balancer", () => {
  it("round-robin walks the healthy nodes in id order, R distinct at a time", () => {
    const nodes = [node("storage-10"), node("storage-2"), node("storage-1")];
    let cursor = 0;
    const picks: string[][] = [];
    for (let index = 0; index < 4; index++) {
      const placed = place(nodes, { bytes: 1, replicas: 2, policy: "round-robin", cursor });
      picks.push(placed.nodes);
      cursor = placed.cursor;
    }
    expect(picks).toEqual([
      ["storage-1", "storage-2"],
      ["storage-2", "storage-10"],
      ["storage-10", "storage-1"],
      ["storage-1", "storage-2"],
    ]);
  });

  it("least-loaded prefers the fewest bytes used, counting in-flight work as chunks about to land", () => {
    const nodes = [
      node("a", { bytesUsed: 5 * gib }),
      node("b", { bytesUsed: 1 * gib, inFlight: 8_000 }), // ~2 GiB on its way
      node("c", { bytesUsed: 2 * gib }),
    ];
    expect(place(nodes, { bytes: 1, replicas: 2, policy: "least-loaded", cursor: 0 }).nodes).toEqual(["c", "b"]);
  });

  it("skips unhealthy nodes and nodes without room for the chunk", () => {
    const nodes = [
      node("full", { bytesUsed: 10 * gib - 10 }),
      node("dead", { healthy: false }),
      node("ok-1"),
      node("ok-2"),
    ];
    for (const policy of ["least-loaded", "round-robin"] as const) {
      expect(place(nodes, { bytes: 100, replicas: 2, policy, cursor: 0 }).nodes.sort()).toEqual(["ok-1", "ok-2"]);
    }
  });

  it("never places two replicas on one node, and says why when it cannot place R", () => {
    expect(() => place([node("only")], { bytes: 1, replicas: 2, policy: "least-loaded", cursor: 0 })).toThrow(
      UnavailableError,
    );
    expect(() => place([node("only")], { bytes: 1, replicas: 2, policy: "round-robin", cursor: 0 })).toThrow(
      /needs 2 healthy storage nodes with room; 1 of 1 known qualify/,
    );
  });

  it.each([
    [{ bytes: -1, replicas: 1 }, /bytes must be a whole number/],
    [{ bytes: 1, replicas: 0 }, /replicas must be from 1 to 5/],
    [{ bytes: 1, replicas: 6 }, /replicas must be from 1 to 5/],
  ])("rejects %j", (request, message) => {
    expect(() => place([node("a")], { ...request, policy: "least-loaded", cursor: 0 })).toThrow(ValidationError);
    expect(() => place([node("a")], { ...request, policy: "least-loaded", cursor: 0 })).toThrow(message);
  });
});
