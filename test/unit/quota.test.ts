import { describe, expect, it } from "vitest";
import { StorageQuota, storedBytesOf } from "../../actors/server/quota.ts";
import type { ImagesState } from "../../projections/mod.ts";

const chunk = (bytes: number, nodes: string[]) => ({ hash: "a".repeat(64), bytes, nodes });
const images = {
  images: {
    one: { owner: "ann", parts: [{ chunks: [chunk(100, ["s1", "s2"]), chunk(50, ["s1"])] }] },
    two: { owner: "bob", parts: [{ chunks: [chunk(1_000, ["s1", "s2"])] }] },
  },
} as unknown as ImagesState;

describe("the storage quota", () => {
  it("counts every replica of a user's own objects only", () => {
    expect(storedBytesOf(images, "ann")).toBe(250);
    expect(storedBytesOf(images, "bob")).toBe(2_000);
    expect(storedBytesOf(images, "cat")).toBe(0);
  });

  it("counts placements for a ticket's lifetime, on top of what is stored, and refuses beyond the quota", () => {
    const quota = new StorageQuota(1_000, 60_000);
    quota.reserve("ann", 700, images, 0);
    expect(() => quota.reserve("ann", 100, images, 1_000)).toThrow(
      /ann's storage quota is 1000 bytes, and 950 are used/,
    );
    // A refusal counted nothing: what fits still fits.
    quota.reserve("ann", 50, images, 1_000);
    expect(() => quota.reserve("bob", 1, images, 1_000)).toThrow(/bob's storage quota/);
    // Once the tickets have expired, only what is stored counts.
    quota.reserve("ann", 750, images, 61_001);
  });
});
