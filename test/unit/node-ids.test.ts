import { describe, expect, it } from "vitest";
import { compareNodeIds } from "../../actors/server/node-ids.ts";

describe("node id order", () => {
  it("orders ids naturally, so server-10 outranks server-9", () => {
    expect(["server-10", "server-2", "server-9", "server-1", "alpha", "server-2a"].sort(compareNodeIds)).toEqual([
      "alpha",
      "server-1",
      "server-2",
      "server-2a",
      "server-9",
      "server-10",
    ]);
  });

  it("is a total order: equal only for the same id", () => {
    expect(compareNodeIds("s-01", "s-1")).not.toBe(0);
    expect(Math.sign(compareNodeIds("s-01", "s-1"))).toBe(-Math.sign(compareNodeIds("s-1", "s-01")));
    expect(compareNodeIds("same", "same")).toBe(0);
  });
});
