/**
 * The images projection, given events / then state: manifests, removal, repair's records,
 * own objects only, by id (names are sealed), and the names objects are shown under.
 */
import { describe, expect, it } from "vitest";
import { decodeEvent, encodeMessage, type VeilEvent, veilEvent } from "../../events/mod.ts";
import { findImage, findShown, fold, imagesProjection } from "../../projections/mod.ts";
import { origin } from "../support/events.ts";
import { bytes } from "../support/users.ts";

const image = "a".repeat(32);
const hash = "b".repeat(64);
const stored = (owner = "alice", id = image, at = 1_800_000_000_000) =>
  veilEvent("ImageStored", {
    owner,
    image: id,
    meta: bytes(3, 60),
    bytes: 10,
    contentHash: bytes(1),
    keyWrapped: bytes(2, 73),
    replicas: 2,
    parts: [{
      chunks: [{ hash, bytes: 100, nodes: ["s1", "s2"] }, { hash: "c".repeat(64), bytes: 50, nodes: ["s1", "s3"] }],
    }],
  }, origin(at));
const shown = (id: string, discoverable: boolean, name?: string, owner = "alice") =>
  veilEvent("DiscoverabilityChanged", { owner, image: id, discoverable, ...(name ? { name } : {}) }, origin());
const given = (...events: VeilEvent[]) => fold(imagesProjection, events);

/** An event as a v1 writer put it in the log: a map with `v: 1`, read back through the codec. */
const readV1 = (type: string, data: Record<string, unknown>) =>
  decodeEvent(encodeMessage({ type, v: 1, id: "old-1", at: 1_700_000_000_000, by: "server-1", data }));

describe("the images projection", () => {
  it("keeps a manifest until its owner removes it", () => {
    expect(given(stored()).images[image]).toMatchObject({ owner: "alice", meta: bytes(3, 60) });
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

  it("finds an owner's object by id only, and nobody else's", () => {
    const state = given(stored(), stored("bob", "e".repeat(32)));
    expect(findImage(state, "alice", image)?.image).toBe(image);
    expect(findImage(state, "bob", image)).toBeUndefined();
    expect(findImage(state, "alice", "photo.png")).toBeUndefined();
    expect(findImage(state, "alice", "constructor")).toBeUndefined();
  });

  it("shows an object under the name its owner chose, while shown, and finds it by that name", () => {
    const newer = "d".repeat(32);
    const state = given(
      stored(),
      stored("alice", newer, 1_800_000_001_000),
      shown(image, true, "beach.png"),
      shown(newer, true, "beach.png"),
    );
    expect(state.images[image]?.shownName).toBe("beach.png");
    expect(findShown(state, "alice", "beach.png")?.image).toBe(newer);
    expect(findShown(state, "bob", "beach.png")).toBeUndefined();
    const hidden = given(stored(), shown(image, true, "beach.png"), shown(image, false));
    expect(hidden.images[image]).toMatchObject({ discoverable: false });
    expect(hidden.images[image]?.shownName).toBeUndefined();
    expect(findShown(hidden, "alice", "beach.png")).toBeUndefined();
  });

  it("reads a v1 manifest (name and type in the clear) as a legacy one, shown under that name by a v1 change", () => {
    const old = readV1("ImageStored", {
      owner: "alice",
      image,
      name: "photo.png",
      bytes: 10,
      type: "image/png",
      contentHash: bytes(1),
      keyWrapped: bytes(2, 73),
      replicas: 2,
      parts: [{ chunks: [{ hash, bytes: 100, nodes: ["s1"] }] }],
    });
    expect(old.v).toBe(2);
    const data = old.data as Record<string, unknown>;
    expect(data.legacy).toEqual({ name: "photo.png", type: "image/png" });
    expect(data).not.toHaveProperty("name");
    expect(data).not.toHaveProperty("type");
    expect(data).not.toHaveProperty("meta");
    const state = given(old, readV1("DiscoverabilityChanged", { owner: "alice", image, discoverable: true }));
    expect(state.images[image]?.shownName).toBe("photo.png");
    expect(findShown(state, "alice", "photo.png")?.image).toBe(image);
  });
});
