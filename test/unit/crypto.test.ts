import { createDecipheriv, hkdfSync } from "node:crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { describe, expect, it } from "vitest";
import {
  decodeHeader,
  derivePasswordKey,
  deriveSubkey,
  headerBytes,
  keyPurposes,
  openObject,
  passwordKdf,
  sealedBytes,
  sealObject,
  tagBytes,
  unwrapKey,
  wrapKey,
} from "../../actors/crypto/mod.ts";
import { IntegrityError } from "../../events/mod.ts";
import { seededRandom } from "../sim/random.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const key = Uint8Array.from({ length: 32 }, (_, index) => index + 1);
const objectId = Uint8Array.from({ length: 16 }, (_, index) => 0xa0 + index);
const segment = 1024;
const bytesOf = (length: number) => Uint8Array.from({ length }, (_, index) => (index * 7) & 255);
const seeded = (seed: number) => {
  const random = seededRandom(seed);
  return { bytes: (length: number) => Uint8Array.from({ length }, () => random.between(0, 255)) };
};

async function opensWithError(sealed: Uint8Array, withKey = key): Promise<string> {
  try {
    await openObject(withKey, sealed);
  } catch (error) {
    expect(error).toBeInstanceOf(IntegrityError);
    return (error as Error).message;
  }
  throw new Error("expected the object not to open");
}

describe("sealed objects", () => {
  it.each([0, 1, segment - 1, segment, segment + 1, 3 * segment + 500])("round-trip %i bytes", async (length) => {
    const plaintext = bytesOf(length);
    const sealed = await sealObject(key, objectId, plaintext, segment);
    expect(sealed.byteLength).toBe(sealedBytes(length, segment));
    const opened = await openObject(key, sealed);
    expect(opened.plaintext).toEqual(plaintext);
    expect(opened.objectId).toEqual(objectId);
  });

  it("matches the known-answer vectors of format v1", async () => {
    expect(hex(await sealObject(key, objectId, new TextEncoder().encode("veil"), segment))).toBe(
      "5645494c01010a00a0a1a2a3a4a5a6a7a8a9aaabacadaeaf0000000000000004b01cb2752d75ee2e84c794a8ede035ceb418d28c",
    );
    expect(hex(sha256(await sealObject(key, objectId, bytesOf(2_500), segment)))).toBe(
      "d1c69417d9e1154e626f83aac1469f675fffe3d0968b8f3975059ed326acd880",
    );
  });

  it("is AES-256-GCM as documented: node:crypto opens a segment with the stated nonce and associated data", async () => {
    const sealed = await sealObject(key, objectId, bytesOf(1_500), segment);
    const header = sealed.subarray(0, headerBytes);
    const nonce = new Uint8Array(12); // 4 zero bytes | index 0 as u64
    const associated = new Uint8Array([...header, 0, 0, 0, 0, 0]); // header | index u32 | not final
    const box = sealed.subarray(headerBytes, headerBytes + segment + tagBytes);
    const decipher = createDecipheriv("aes-256-gcm", key, nonce);
    decipher.setAAD(associated);
    decipher.setAuthTag(box.subarray(segment));
    const plaintext = Buffer.concat([decipher.update(box.subarray(0, segment)), decipher.final()]);
    expect(new Uint8Array(plaintext)).toEqual(bytesOf(1_500).subarray(0, segment));
  });

  it("does not open with the wrong key, or when not a sealed object", async () => {
    const sealed = await sealObject(key, objectId, bytesOf(100), segment);
    expect(await opensWithError(sealed, new Uint8Array(32))).toMatch(/segment 0 does not open/);
    expect(await opensWithError(new TextEncoder().encode("PNG, not veil"))).toMatch(/no VEIL header/);
  });

  it("detects any tampering with the header (length, object id, parameters)", async () => {
    const sealed = await sealObject(key, objectId, bytesOf(3_000), segment);
    for (const position of [9, 20, 31]) {
      const tampered = sealed.slice();
      tampered[position]! ^= 1;
      await opensWithError(tampered);
    }
    const otherSegmentSize = sealed.slice();
    otherSegmentSize[6] = 11;
    await opensWithError(otherSegmentSize);
  });

  it("detects flipped bits, truncation, reordering and splicing of segments", async () => {
    const sealed = await sealObject(key, objectId, bytesOf(3 * segment), segment);
    const box = segment + tagBytes;
    const flipped = sealed.slice();
    flipped[headerBytes + 10]! ^= 0x80;
    expect(await opensWithError(flipped)).toMatch(/segment 0/);

    expect(await opensWithError(sealed.subarray(0, sealed.byteLength - box))).toMatch(/truncated/);

    const swapped = sealed.slice();
    swapped.set(sealed.subarray(headerBytes, headerBytes + box), headerBytes + box);
    swapped.set(sealed.subarray(headerBytes + box, headerBytes + 2 * box), headerBytes);
    expect(await opensWithError(swapped)).toMatch(/segment 0/);

    // A segment from another object under the same key (ids differ, so the associated data does).
    const otherId = objectId.slice();
    otherId[0]! ^= 1;
    const other = await sealObject(key, otherId, bytesOf(3 * segment), segment);
    const spliced = sealed.slice();
    spliced.set(other.subarray(headerBytes + box, headerBytes + 2 * box), headerBytes + box);
    expect(await opensWithError(spliced)).toMatch(/segment 1/);

    // Truncation that also rewrites the length: the new last segment was not sealed as final.
    const shortened = sealed.slice(0, headerBytes + 2 * box);
    new DataView(shortened.buffer).setBigUint64(24, BigInt(2 * segment));
    await opensWithError(shortened);
  });

  it("reads its header without the key", async () => {
    const sealed = await sealObject(key, objectId, bytesOf(10), segment);
    expect(decodeHeader(sealed)).toEqual({ objectId, plaintextBytes: 10, segmentBytes: segment });
  });
});

describe("keys", () => {
  it("derives one distinct subkey per purpose, as standard HKDF-SHA-256 with the label veil/v1/<purpose>", () => {
    const keys = keyPurposes.map((purpose) => hex(deriveSubkey(key, purpose)));
    expect(new Set(keys).size).toBe(keyPurposes.length);
    const reference = new Uint8Array(hkdfSync("sha256", key, new Uint8Array(), "veil/v1/auth", 32));
    expect(deriveSubkey(key, "auth")).toEqual(reference);
    expect(hex(deriveSubkey(key, "auth"))).toBe("ba9f84496bb9e1f2698c01d5235dbbccfbb0de5e6b24cb97b2fd5412fd9be17f");
  });

  it("wraps and unwraps object keys, bound to their context", () => {
    const objectKey = Uint8Array.from({ length: 32 }, () => 9);
    const wrapped = wrapKey(key, objectKey, "object:test", { bytes: (length) => new Uint8Array(length).fill(0x55) });
    expect(hex(wrapped)).toBe(
      "015555555555555555555555555555555555555555555555556998c40a5e3c1fa71ce35e7fe7341b63ee136b85aadce452f388f148bed1e518722b41db13be4311c5f3cbe6d14acc70",
    );
    expect(unwrapKey(key, wrapped, "object:test")).toEqual(objectKey);
    expect(() => unwrapKey(key, wrapped, "object:other")).toThrow(IntegrityError);
    expect(() => unwrapKey(new Uint8Array(32), wrapped, "object:test")).toThrow(IntegrityError);
    const damaged = wrapped.slice();
    damaged[40]! ^= 1;
    expect(() => unwrapKey(key, damaged, "object:test")).toThrow(/does not open/);
    expect(() => unwrapKey(key, wrapped.subarray(1), "object:test")).toThrow(/not a wrapped key/);
  });

  it("gives every wrapping a fresh nonce", () => {
    const random = seeded(1);
    const objectKey = new Uint8Array(32);
    expect(hex(wrapKey(key, objectKey, "c", random))).not.toBe(hex(wrapKey(key, objectKey, "c", random)));
  });

  it("derives password keys with scrypt, NFKC-normalised, at OWASP strength by default", async () => {
    expect(passwordKdf).toEqual({ N: 2 ** 17, r: 8, p: 1 });
    const salt = new Uint8Array(16).fill(7);
    const light = { N: 2 ** 10, r: 8, p: 1 };
    const composed = await derivePasswordKey("caf\u00e9", salt, light);
    expect(await derivePasswordKey("cafe\u0301", salt, light)).toEqual(composed);
    expect(await derivePasswordKey("caf\u00e9", new Uint8Array(16).fill(8), light)).not.toEqual(composed);
  });
});
