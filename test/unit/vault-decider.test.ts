/** The vault decider: given image and grant events / when a store or a remove / then the event (or a typed refusal). */
import { describe, expect, it } from "vitest";
import { decideRemove, decideStore, type ImageEventMaker } from "../../actors/server/vault/decider.ts";
import { type ImageEvent, type VeilEvent, veilEvent } from "../../events/mod.ts";
import { fold, grantsProjection, imagesProjection, type ImagesState } from "../../projections/mod.ts";
import { origin } from "../support/events.ts";
import { decider } from "../support/given-when-then.ts";
import { bytes } from "../support/users.ts";

const make: ImageEventMaker = (type, data) => veilEvent(type, data as never, origin()) as VeilEvent;
const id = (digit: string) => digit.repeat(32);
const hash = (digit: string) => digit.repeat(64);

/** A manifest as an upload sends it: one part of two chunks, its name and type sealed. */
const manifest = (image = id("a"), chunks = [hash("b"), hash("c")], extra: Record<string, unknown> = {}) => ({
  owner: "whoever the client says",
  image,
  meta: bytes(3, 60),
  bytes: 10,
  contentHash: bytes(1),
  keyWrapped: bytes(2, 73),
  replicas: 2,
  parts: [{ chunks: chunks.map((chunk) => ({ hash: chunk, bytes: 100, nodes: ["s1", "s2"] })) }],
  ...extra,
});
const stored = (owner: string, image = id("a"), chunks?: string[], extra: Record<string, unknown> = {}) =>
  veilEvent("ImageStored", { ...manifest(image, chunks), ...extra, owner }, origin()) as ImageEvent;

type Command =
  | { readonly store: unknown; readonly by: string }
  | { readonly remove: string; readonly by: string };

const given = decider<{ images: ImagesState; grantEvents: VeilEvent[] }, VeilEvent, Command>({
  initial: { images: imagesProjection.initial(), grantEvents: [] },
  evolve: (state, event) => ({ ...state, images: imagesProjection.evolve(state.images, event) }),
  decide: (command, { images, grantEvents }) =>
    "store" in command ? [decideStore(command.store, command.by, images, make)] : [
      decideRemove({ user: command.by, image: command.remove }, images, fold(grantsProjection, grantEvents), make)
        .event,
    ],
});

describe("vault decisions", () => {
  it("stores a manifest as its uploader's, whatever owner it names", () => {
    given().when({ store: manifest(), by: "alice" }).then(
      ["ImageStored"],
      ([event]) => expect(event!.data).toMatchObject({ owner: "alice", image: id("a") }),
    );
  });

  it("refuses a manifest with its name in the clear, one that does not add up, or not a map at all", () => {
    given().when({
      store: manifest(id("a"), undefined, { meta: undefined, legacy: { name: "a.txt", type: "text/plain" } }),
      by: "alice",
    })
      .thenRefuses("validation", /travel sealed/);
    given().when({ store: manifest(id("a"), undefined, { bytes: 10_000_000 }), by: "alice" })
      .thenRefuses("validation", /does not add up/);
    given().when({ store: "a manifest", by: "alice" }).thenRefuses("validation", /expected a map/);
  });

  it("refuses a manifest that names another user's chunk, and allows one that names the uploader's own", () => {
    const bobs = given(stored("bob", id("a"), [hash("b")]));
    bobs.when({ store: manifest(id("d"), [hash("b")]), by: "alice" }).thenRefuses(
      "forbidden",
      /belongs to another user/,
    );
    bobs.when({ store: manifest(id("d"), [hash("b")]), by: "bob" }).then(["ImageStored"]);
  });

  it("removes the user's own object, and nobody else's: another's is not found, like a missing one", () => {
    const alices = given(stored("alice"));
    alices.when({ remove: id("a"), by: "alice" }).then(
      ["ImageRemoved"],
      ([event]) => expect(event!.data).toEqual({ owner: "alice", image: id("a") }),
    );
    alices.when({ remove: id("a"), by: "bob" }).thenRefuses("not-found", /no object/);
    alices.when({ remove: id("e"), by: "alice" }).thenRefuses("not-found", /no object/);
  });

  it("removes a grant's stray copy (no grant recorded for it) by its id", () => {
    given(stored("bob", id("f"), [hash("9")], { grant: id("7") }))
      .when({ remove: id("f"), by: "bob" })
      .then(["ImageRemoved"]);
  });
});
