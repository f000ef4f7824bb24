/**
 * An object's private metadata, pure. Its name and type are sealed on the owner's machine
 * under a key derived from the object's data key, with the object's id bound as context, so
 * whoever can open the object (its owner; for a grant's copy, the recipient) can read them,
 * and nobody else, the servers included: a sealed name moved to another object does not
 * open. The content hash is keyed the same way (HMAC-SHA-256 under another subkey), so the
 * log cannot be searched for a file someone already has.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  decodeMessage,
  encodeMessage,
  IntegrityError,
  limits,
  object,
  objectName,
  objectType,
} from "../../events/mod.ts";
import { deriveSubkey, openSecret, sealSecret } from "../crypto/mod.ts";
import type { RandomSource } from "../ports.ts";
import type { ObjectKeys } from "./vault.ts";

export interface ObjectMeta {
  readonly name: string;
  readonly type: string;
}

const metaShape = object({ name: objectName, type: objectType });
const metaContext = (image: string) => `meta:${image}`;

export function sealMeta(keys: ObjectKeys, meta: ObjectMeta, random: RandomSource): Uint8Array {
  const sealed = sealSecret(
    deriveSubkey(keys.dataKey, "object-meta"),
    encodeMessage(metaShape.parse(meta)),
    metaContext(keys.image),
    random,
  );
  if (sealed.byteLength > limits.objectMetaSealedBytesMax) {
    throw new Error(`programmer error: sealed meta of ${sealed.byteLength} bytes is over its bound`);
  }
  return sealed;
}

/** Opens sealed meta; a wrong key, another object's meta or damaged bytes are an IntegrityError saying so. */
export function openMeta(keys: ObjectKeys, sealed: Uint8Array): ObjectMeta {
  let plain: Uint8Array;
  try {
    plain = openSecret(deriveSubkey(keys.dataKey, "object-meta"), sealed, metaContext(keys.image));
  } catch (cause) {
    throw new IntegrityError(
      `the name and type of object ${keys.image} do not open with this key (another object's, or damaged)`,
      { cause },
    );
  }
  try {
    // Sealed by whoever held the key, which for a grant's copy is someone else: checked like any input.
    return metaShape.parse(decodeMessage(plain, limits.objectMetaSealedBytesMax));
  } catch (cause) {
    throw new IntegrityError(`the name and type of object ${keys.image} opened to something malformed`, { cause });
  }
}

/**
 * What a manifest says the object is called: the sealed meta opened, or, for a manifest
 * written before names were sealed (v1), the name and type it had in the clear.
 */
export function metaOf(
  keys: ObjectKeys,
  manifest: { readonly meta?: Uint8Array; readonly legacy?: ObjectMeta },
): ObjectMeta {
  if (manifest.meta) return openMeta(keys, manifest.meta);
  if (manifest.legacy) return manifest.legacy;
  throw new IntegrityError(`object ${keys.image} has neither sealed nor legacy metadata`);
}

/** The key of an object's content hash: HMAC-SHA-256 of the plaintext under it. */
export const contentMacKey = (keys: ObjectKeys): Uint8Array => deriveSubkey(keys.dataKey, "content-mac");

/**
 * The content hash of a whole plaintext in memory, as the manifest records it: keyed, or a
 * plain SHA-256 for a legacy (v1) manifest. Streaming callers compute the same with their
 * runtime's HMAC over `contentMacKey`.
 */
export function contentHashOf(keys: ObjectKeys, plaintext: Uint8Array, legacy: boolean): Uint8Array {
  return legacy ? sha256(plaintext) : hmac(sha256, contentMacKey(keys), plaintext);
}
