/**
 * Sealing to a public key (an X25519 "box"): an ephemeral key pair, the shared secret
 * through HKDF, XChaCha20-Poly1305 with a context bound as associated data. Output: the
 * ephemeral public key, then the seal. The same shared secret gives the key an answer is
 * sealed under, so a reply opens only for whoever sealed the question.
 */
import { x25519 } from "@noble/curves/ed25519.js";
import { IntegrityError, ValidationError } from "../../events/mod.ts";
import type { RandomSource } from "../ports.ts";
import { deriveSubkey, keyBytes, type KeyPurpose, openSecret, sealSecret } from "./keys.ts";

export interface KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

export function newKeyPair(random: RandomSource): KeyPair {
  const privateKey = random.bytes(keyBytes);
  return { privateKey, publicKey: x25519.getPublicKey(privateKey) };
}

/** The key pair a 32-byte secret stands for (the cluster's, derived from the cluster key). */
export function keyPairOf(privateKey: Uint8Array): KeyPair {
  return { privateKey, publicKey: x25519.getPublicKey(privateKey) };
}

/** Sealed to `publicKey`, with the key a reply to it is sealed under (only the two ends can derive it). */
export function sealTo(
  publicKey: Uint8Array,
  plaintext: Uint8Array,
  purpose: KeyPurpose,
  context: string,
  random: RandomSource,
): { sealed: Uint8Array; replyKey: Uint8Array } {
  if (publicKey.byteLength !== keyBytes) throw new ValidationError("public keys are 32 bytes");
  const ephemeral = newKeyPair(random);
  const shared = x25519.getSharedSecret(ephemeral.privateKey, publicKey);
  const key = deriveSubkey(shared, purpose, ephemeral.publicKey);
  const body = sealSecret(key, plaintext, `box:${context}`, random);
  const sealed = new Uint8Array(keyBytes + body.byteLength);
  sealed.set(ephemeral.publicKey, 0);
  sealed.set(body, keyBytes);
  return { sealed, replyKey: deriveSubkey(shared, "box-reply", ephemeral.publicKey) };
}

/** Opens what `sealTo` sealed; a wrong key or context is an IntegrityError. */
export function openSealed(
  privateKey: Uint8Array,
  sealed: Uint8Array,
  purpose: KeyPurpose,
  context: string,
): { plaintext: Uint8Array; replyKey: Uint8Array } {
  if (sealed.byteLength <= keyBytes) throw new ValidationError("a sealed message is too short");
  const ephemeralPublic = sealed.subarray(0, keyBytes);
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(privateKey, ephemeralPublic);
  } catch (cause) {
    throw new IntegrityError("the sealed message does not open: not a public key", { cause });
  }
  const key = deriveSubkey(shared, purpose, ephemeralPublic);
  return {
    plaintext: openSecret(key, sealed.subarray(keyBytes), `box:${context}`),
    replyKey: deriveSubkey(shared, "box-reply", ephemeralPublic),
  };
}
