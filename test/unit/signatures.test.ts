import { describe, expect, it } from "vitest";
import { portableSignatures } from "../../actors/crypto/mod.ts";
import { nativeSignatures } from "../../infra/signatures.ts";
import { cryptoRandom as random } from "../../infra/random.ts";

const message = new TextEncoder().encode("veil/v1/storage-ticket\0a ticket's fields");

describe("Ed25519, native and portable", () => {
  it("make the same keys and signatures, and each checks the other's", () => {
    for (let round = 0; round < 5; round++) {
      const secretKey = random.bytes(32);
      const publicKey = portableSignatures.publicKeyOf(secretKey);
      expect(nativeSignatures.publicKeyOf(secretKey)).toEqual(publicKey);
      const signature = nativeSignatures.sign(message, secretKey);
      expect(signature).toEqual(portableSignatures.sign(message, secretKey));
      expect(portableSignatures.verify(signature, message, publicKey)).toBe(true);
      expect(nativeSignatures.verify(portableSignatures.sign(message, secretKey), message, publicKey)).toBe(true);
    }
  });

  it("refuse, without throwing, a wrong signature, another message, a wrong key or bytes that are no key", () => {
    const secretKey = random.bytes(32);
    const publicKey = nativeSignatures.publicKeyOf(secretKey);
    const signature = nativeSignatures.sign(message, secretKey);
    const flipped = signature.slice();
    flipped[10]! ^= 1;
    const other = nativeSignatures.publicKeyOf(random.bytes(32));
    for (const signatures of [nativeSignatures, portableSignatures]) {
      expect(signatures.verify(flipped, message, publicKey)).toBe(false);
      expect(signatures.verify(signature, message.subarray(1), publicKey)).toBe(false);
      expect(signatures.verify(signature, message, other)).toBe(false);
      expect(signatures.verify(signature.subarray(0, 63), message, publicKey)).toBe(false);
      expect(signatures.verify(signature, message, new Uint8Array(31))).toBe(false);
      expect(signatures.verify(signature, message, new Uint8Array(32).fill(0xff))).toBe(false);
    }
  });
});
