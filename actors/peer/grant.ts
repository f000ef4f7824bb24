/**
 * The keys of a grant, pure. A grant key is split in two random shares: share A is sealed
 * to the recipient's X25519 public key (and may sit in the log), share B is held by the
 * cluster outside the log and released for one view at a time, sealed to the recipient
 * again. The copy's data key is derived from both shares, with the owner, the recipient and
 * the grant id as salt, and the copy's object id (bound into every sealed part's header as
 * associated data) is a hash of the same three: a copy moved to another grant or user opens
 * to nothing. Deleting share B (crypto-shredding) leaves nobody able to open the copy.
 */
import { x25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { ValidationError } from "../../events/mod.ts";
import { deriveSubkey, keyBytes, openSecret, sealSecret } from "../crypto/mod.ts";
import type { RandomSource } from "../ports.ts";
import type { ObjectKeys } from "./vault.ts";

const encoder = new TextEncoder();

export interface GrantParties {
  readonly grant: string;
  readonly owner: string;
  readonly recipient: string;
}

const bindingOf = (parties: GrantParties): Uint8Array =>
  sha256(encoder.encode(`veil/v1/grant:${parties.grant}:${parties.owner}:${parties.recipient}`));

/** The id of a grant's copy in the vault: fixed by the grant and its parties, so the server can check it. */
export const grantCopyId = (parties: GrantParties): string => bytesToHex(bindingOf(parties).slice(0, 16));

export function newGrantShares(random: RandomSource): { shareA: Uint8Array; shareB: Uint8Array } {
  return { shareA: random.bytes(keyBytes), shareB: random.bytes(keyBytes) };
}

/** The copy's keys: both shares are needed, and they open only this grant's copy. */
export function grantObjectKeys(parties: GrantParties, shareA: Uint8Array, shareB: Uint8Array): ObjectKeys {
  if (shareA.byteLength !== keyBytes || shareB.byteLength !== keyBytes) {
    throw new ValidationError("shares are 32 bytes");
  }
  const binding = bindingOf(parties);
  const material = new Uint8Array(2 * keyBytes);
  material.set(shareA, 0);
  material.set(shareB, keyBytes);
  const objectId = binding.slice(0, 16);
  return { image: bytesToHex(objectId), objectId, dataKey: deriveSubkey(material, "grant", binding) };
}

/**
 * Seals a share to an X25519 public key: an ephemeral key pair, the shared secret through
 * HKDF, XChaCha20-Poly1305 with `context` bound. Output: ephemeral public key, then the seal.
 */
export function sealShareTo(
  publicKey: Uint8Array,
  share: Uint8Array,
  context: string,
  random: RandomSource,
): Uint8Array {
  const ephemeral = random.bytes(keyBytes);
  const ephemeralPublic = x25519.getPublicKey(ephemeral);
  const key = deriveSubkey(x25519.getSharedSecret(ephemeral, publicKey), "grant", ephemeralPublic);
  const sealed = sealSecret(key, share, `share:${context}`, random);
  const out = new Uint8Array(keyBytes + sealed.byteLength);
  out.set(ephemeralPublic, 0);
  out.set(sealed, keyBytes);
  return out;
}

/** Opens what `sealShareTo` sealed; a wrong key or context is an IntegrityError. */
export function openShare(privateKey: Uint8Array, sealed: Uint8Array, context: string): Uint8Array {
  if (sealed.byteLength <= keyBytes) throw new ValidationError("a sealed share is too short");
  const ephemeralPublic = sealed.subarray(0, keyBytes);
  const key = deriveSubkey(x25519.getSharedSecret(privateKey, ephemeralPublic), "grant", ephemeralPublic);
  return openSecret(key, sealed.subarray(keyBytes), `share:${context}`);
}

/**
 * A public key's fingerprint as people compare it: SHA-256, its first 16 bytes in groups of
 * four hex digits. `veil approve` shows the recipient's, so an owner can check it out of band.
 */
export function keyFingerprint(publicKey: Uint8Array): string {
  return bytesToHex(sha256(publicKey).slice(0, 16)).match(/.{4}/g)!.join(":");
}

/** The contexts the shares are sealed under: share A once per grant, share B once per view. */
export const shareAContext = (parties: GrantParties) => `a:${parties.grant}:${parties.owner}:${parties.recipient}`;
export const shareBContext = (parties: GrantParties, view: string) =>
  `b:${parties.grant}:${parties.owner}:${parties.recipient}:${view}`;
