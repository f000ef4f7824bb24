/**
 * An object's private metadata: its name and type open only with its own keys (the owner's
 * data key, or a grant's), bound to its id; its content hash is keyed, and a legacy (v1)
 * manifest's plain one still checks.
 */
import { createHmac } from "node:crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { describe, expect, it } from "vitest";
import { grantObjectKeys, newGrantShares } from "../../actors/peer/grant.ts";
import { contentHashOf, contentMacKey, metaOf, openMeta, sealMeta } from "../../actors/peer/meta.ts";
import { newObjectKeys } from "../../actors/peer/vault.ts";
import { IntegrityError, limits } from "../../events/mod.ts";
import { cryptoRandom } from "../../infra/random.ts";

const meta = { name: "holiday photo.png", type: "image/png" };
const text = (value: string) => new TextEncoder().encode(value);
const contains = (haystack: Uint8Array, needle: Uint8Array) => bytesToHex(haystack).includes(bytesToHex(needle));

describe("sealed metadata", () => {
  it("opens to the name and type with the object's keys, and shows neither in the sealed bytes", () => {
    const keys = newObjectKeys(cryptoRandom);
    const sealed = sealMeta(keys, meta, cryptoRandom);
    expect(openMeta(keys, sealed)).toEqual(meta);
    expect(contains(sealed, text("holiday"))).toBe(false);
    expect(contains(sealed, text("image/png"))).toBe(false);
    // The longest name there can be still fits the bound the event schema sets.
    const longest = { name: "\u{10348}".repeat(127) + "x", type: "t".repeat(128) };
    expect(sealMeta(keys, longest, cryptoRandom).byteLength).toBeLessThanOrEqual(limits.objectMetaSealedBytesMax);
  });

  it("does not open with another key, for another object, or damaged: a typed error that says so", () => {
    const keys = newObjectKeys(cryptoRandom);
    const sealed = sealMeta(keys, meta, cryptoRandom);
    const other = newObjectKeys(cryptoRandom);
    const wrongKey = () => openMeta({ ...keys, dataKey: other.dataKey }, sealed);
    expect(wrongKey).toThrow(IntegrityError);
    expect(wrongKey).toThrow(`the name and type of object ${keys.image} do not open with this key`);
    // The same key, but the id of another object: the seal is bound to its own.
    expect(() => openMeta({ ...other, dataKey: keys.dataKey }, sealed)).toThrow(IntegrityError);
    const damaged = sealed.slice();
    damaged[damaged.length - 1]! ^= 1;
    expect(() => openMeta(keys, damaged)).toThrow(/do not open with this key/);
  });

  it("refuses to seal what is not a name (a path, control characters)", () => {
    const keys = newObjectKeys(cryptoRandom);
    expect(() => sealMeta(keys, { name: "../etc/passwd", type: "text/plain" }, cryptoRandom)).toThrow(/name/);
    expect(() => sealMeta(keys, { name: "a\u001b[2J", type: "text/plain" }, cryptoRandom)).toThrow(/name/);
  });

  it("opens for a grant's recipient with the grant's keys, and not with the owner's", () => {
    const parties = { grant: "2".repeat(32), owner: "olga", recipient: "rita" };
    const { shareA, shareB } = newGrantShares(cryptoRandom);
    const copy = grantObjectKeys(parties, shareA, shareB);
    const sealed = sealMeta(copy, meta, cryptoRandom);
    expect(metaOf(grantObjectKeys(parties, shareA, shareB), { meta: sealed })).toEqual(meta);
    const owners = newObjectKeys(cryptoRandom);
    expect(() => metaOf({ ...owners, image: copy.image, objectId: copy.objectId }, { meta: sealed })).toThrow(
      IntegrityError,
    );
  });

  it("takes a legacy manifest's clear name as it is", () => {
    const keys = newObjectKeys(cryptoRandom);
    expect(metaOf(keys, { legacy: meta })).toEqual(meta);
    expect(() => metaOf(keys, {})).toThrow(/neither sealed nor legacy/);
  });
});

describe("the content hash", () => {
  const plaintext = text("the same file, twice");

  it("is keyed by the object: no plain SHA-256, and another object's key gives another", () => {
    const keys = newObjectKeys(cryptoRandom);
    const keyed = contentHashOf(keys, plaintext, false);
    expect(bytesToHex(keyed)).not.toBe(bytesToHex(sha256(plaintext)));
    expect(bytesToHex(contentHashOf(newObjectKeys(cryptoRandom), plaintext, false))).not.toBe(bytesToHex(keyed));
    // What uploads and downloads compute, streaming, with the runtime's HMAC: the same value.
    const native = createHmac("sha256", contentMacKey(keys)).update(plaintext).digest();
    expect(bytesToHex(new Uint8Array(native))).toBe(bytesToHex(keyed));
  });

  it("is the plain SHA-256 for a legacy manifest, so old objects still check", () => {
    expect(bytesToHex(contentHashOf(newObjectKeys(cryptoRandom), plaintext, true))).toBe(
      bytesToHex(sha256(plaintext)),
    );
  });
});
