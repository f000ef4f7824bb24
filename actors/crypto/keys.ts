/**
 * Keys. Every key has one purpose, and keys for different purposes never coincide:
 * - password keys come from scrypt at OWASP strength (N = 2^17, r = 8, p = 1), which takes
 *   128 MiB and a good part of a second on purpose, so it runs in the crypto worker pool;
 * - subkeys come from HKDF-SHA-256 with a distinct label per purpose (`veil/v1/<purpose>`);
 * - object keys are random, one per object, and travel only wrapped: XChaCha20-Poly1305
 *   under a key-encryption key, with a random 192-bit nonce (one KEK wraps many keys, so
 *   random nonces, not counters) and the wrapping's context as associated data.
 */
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { IntegrityError, ValidationError } from "../../events/mod.ts";
import type { RandomSource } from "../ports.ts";

export const keyBytes = 32;

export const keyPurposes = [
  "auth",
  "account-key",
  "private-key",
  "object-key-wrap",
  "stego-order",
  "grant",
  "local-object",
  "cluster-seal",
  "cluster-mac",
  "object-part",
  "box-reply",
  "command",
  "note",
  "cluster-box",
  "storage-ticket",
  "object-meta",
  "content-mac",
] as const;
export type KeyPurpose = (typeof keyPurposes)[number];

export interface ScryptParameters {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** OWASP's scrypt recommendation; stored beside what it derived, so it can be raised later. */
export const passwordKdf: ScryptParameters = { N: 2 ** 17, r: 8, p: 1 };

const encoder = new TextEncoder();

export function newObjectKey(random: RandomSource): Uint8Array {
  return random.bytes(keyBytes);
}

/** A key for one purpose from input keying material (a master key, a shared secret). */
export function deriveSubkey(material: Uint8Array, purpose: KeyPurpose, salt?: Uint8Array): Uint8Array {
  if (material.byteLength < 16) throw new ValidationError("key material must be at least 16 bytes");
  return hkdf(sha256, material, salt, encoder.encode(`veil/v1/${purpose}`), keyBytes);
}

/** The password's key: slow and memory-hard on purpose. The password is NFKC-normalised first. */
export async function derivePasswordKey(
  password: string,
  salt: Uint8Array,
  parameters: ScryptParameters = passwordKdf,
): Promise<Uint8Array> {
  if (salt.byteLength < 16) throw new ValidationError("a password salt must be at least 16 bytes");
  return await scryptAsync(encoder.encode(password.normalize("NFKC")), salt, { ...parameters, dkLen: keyBytes });
}

/** The server's hash of a client's authentication hash: the same memory-hard scrypt, over bytes. */
export async function slowHash(
  input: Uint8Array,
  salt: Uint8Array,
  parameters: ScryptParameters = passwordKdf,
): Promise<Uint8Array> {
  if (salt.byteLength < 16) throw new ValidationError("a salt must be at least 16 bytes");
  return await scryptAsync(input, salt, { ...parameters, dkLen: keyBytes });
}

/**
 * The salt for passphrase-only use (`veil stego` on its own): it has to be known before
 * anything can be read, so it is fixed and versioned. Every object still gets its own key,
 * from a random salt carried with it.
 */
export const localPassphraseSalt = encoder.encode("veil/v1/stego-local-passphrase");

const sealVersion = 1;
const nonceBytes = 24;
const sealOverheadBytes = 1 + nonceBytes + 16;
export const wrappedKeyBytes = sealOverheadBytes + keyBytes;

/**
 * Seals a small secret (a TOTP seed, an email address) under `key` with XChaCha20-Poly1305;
 * `context` (e.g. "totp:alice") is bound as associated data and must be given again to open it,
 * so a sealed value moved to another place or user does not open.
 */
export function sealSecret(key: Uint8Array, secret: Uint8Array, context: string, random: RandomSource): Uint8Array {
  if (key.byteLength !== keyBytes) throw new ValidationError("keys are 32 bytes");
  const nonce = random.bytes(nonceBytes);
  const sealed = xchacha20poly1305(key, nonce, encoder.encode(`veil/v1/${context}`)).encrypt(secret);
  const out = new Uint8Array(1 + nonceBytes + sealed.byteLength);
  out[0] = sealVersion;
  out.set(nonce, 1);
  out.set(sealed, 1 + nonceBytes);
  return out;
}

export function openSecret(key: Uint8Array, sealed: Uint8Array, context: string): Uint8Array {
  if (sealed.byteLength < sealOverheadBytes || sealed[0] !== sealVersion) {
    throw new IntegrityError("not a sealed value of a version this veil reads");
  }
  try {
    return xchacha20poly1305(key, sealed.subarray(1, 1 + nonceBytes), encoder.encode(`veil/v1/${context}`))
      .decrypt(sealed.subarray(1 + nonceBytes));
  } catch (cause) {
    throw new IntegrityError("the sealed value does not open: wrong key, wrong context, or damaged", { cause });
  }
}

/** Wraps `key` under `kek`; `context` (e.g. "object:<id>") must be given again to unwrap it. */
export function wrapKey(kek: Uint8Array, key: Uint8Array, context: string, random: RandomSource): Uint8Array {
  if (kek.byteLength !== keyBytes || key.byteLength !== keyBytes) throw new ValidationError("keys are 32 bytes");
  return sealSecret(kek, key, `wrap/${context}`, random);
}

export function unwrapKey(kek: Uint8Array, wrapped: Uint8Array, context: string): Uint8Array {
  if (wrapped.byteLength !== wrappedKeyBytes || wrapped[0] !== sealVersion) {
    throw new IntegrityError("not a wrapped key of a version this veil reads");
  }
  try {
    return openSecret(kek, wrapped, `wrap/${context}`);
  } catch (cause) {
    throw new IntegrityError("the wrapped key does not open: wrong key, wrong context, or damaged", { cause });
  }
}
