/** The images projection, given events / then state: manifests, removal, repair's records, own objects only. */
import { describe, expect, it } from "vitest";
import { type VeilEvent, veilEvent } from "../../events/mod.ts";
import { findImage, fold, imagesProjection } from "../../projections/mod.ts";
import { origin } from "../support/events.ts";
import { bytes } from "../support/users.ts";

const image = "a".repeat(32);
const hash = "b".repeat(64);
const stored = (owner = "alice", id = image, at = 1_800_000_000_000) =>
  veilEvent("ImageStored", {
    owner,
    image: id,
    name: "photo.png",
    bytes: 10,
    type: "image/png",
    contentHash: bytes(1),
    keyWrapped: bytes(2, 73),
    replicas: 2,
    parts: [{
      chunks: [{ hash, bytes: 100, nodes: ["s1", "s2"] }, { hash: "c".repeat(64), bytes: 50, nodes: ["s1", "s3"] }],
    }],
  }, origin(at));
const given = (...events: VeilEvent[]) => fold(imagesProjection, events);

describe("the images projection", () => {
  it("keeps a manifest until its owner removes it", () => {
    expect(given(stored()).images[image]).toMatchObject({ owner: "alice", name: "photo.png" });
    expect(given(stored(), veilEvent("ImageRemoved", { owner: "alice", image }, origin())).images).toEqual({});
  });

  it("moves replicas as repair records them", () => {
    const lost = veilEvent("ChunkLost", { image, hash, node: "s1" }, origin());
    const copied = veilEvent("ChunkReplicated", { image, hash, node: "s3" }, origin());
    const chunks = given(stored(), lost, copied).images[image]!.parts[0]!.chunks;
    expect(chunks[0]!.nodes).toEqual(["s2", "s3"]);
    expect(chunks[1]!.nodes).toEqual(["s1", "s3"]);
    // A record about an object that is gone changes nothing.
    expect(given(veilEvent("ChunkReplicated", { image, hash, node: "s3" }, origin())).images).toEqual({});
  });

  it("finds an owner's object by id or by its latest name, and nobody else's", () => {
    const newer = "d".repeat(32);
    const state = given(stored(), stored("alice", newer, 1_800_000_001_000), stored("bob", "e".repeat(32)));
    expect(findImage(state, "alice", image)?.image).toBe(image);
    expect(findImage(state, "alice", "photo.png")?.image).toBe(newer);
    expect(findImage(state, "bob", image)).toBeUndefined();
    expect(findImage(state, "alice", "constructor")).toBeUndefined();
  });
});
