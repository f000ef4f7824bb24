/**
 * The owner's side of the vault, pure: keys and layout. Each object has a random data key,
 * kept in the log only wrapped by the owner's account key. An object is sealed in parts of
 * bounded size; each part has its own key and its own stego order key, both derived from
 * the data key with the part's index as salt, so no key ever seals two things. A part's
 * sealed bytes are hidden in one cover PNG, which is cut into chunks named by their SHA-256.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { IntegrityError, limits, ValidationError } from "../../events/mod.ts";
import { deriveSubkey, keyBytes, sha256Hex, unwrapKey, wrapKey } from "../crypto/mod.ts";
import type { ChunkHasher, RandomSource } from "../ports.ts";

export interface ObjectKeys {
  readonly image: string;
  /** The sealed envelope's object id: the image id's 16 bytes, so a part opens only as part of its object. */
  readonly objectId: Uint8Array;
  readonly dataKey: Uint8Array;
}

export function newObjectKeys(random: RandomSource): ObjectKeys {
  const objectId = random.bytes(16);
  return { image: bytesToHex(objectId), objectId, dataKey: random.bytes(keyBytes) };
}

export function wrapDataKey(accountKey: Uint8Array, keys: ObjectKeys, random: RandomSource): Uint8Array {
  return wrapKey(accountKey, keys.dataKey, `image:${keys.image}`, random);
}

export function openObjectKeys(accountKey: Uint8Array, image: string, keyWrapped: Uint8Array): ObjectKeys {
  const objectId = new Uint8Array(image.match(/../g)!.map((pair) => parseInt(pair, 16)));
  return { image, objectId, dataKey: unwrapKey(accountKey, keyWrapped, `image:${image}`) };
}

const indexSalt = (index: number) => {
  const salt = new Uint8Array(16);
  new DataView(salt.buffer).setUint32(12, index);
  return salt;
};

/** The key index of an object's preview: past any content part there can be, so no key seals two things. */
export const previewPartIndex = 0x7fffffff;

/** The keys of part `index`: one seals it, one orders its bits in the cover. */
export function partKeys(keys: ObjectKeys, index: number): { sealKey: Uint8Array; orderKey: Uint8Array } {
  return {
    sealKey: deriveSubkey(keys.dataKey, "object-part", indexSalt(index)),
    orderKey: deriveSubkey(keys.dataKey, "stego-order", indexSalt(index)),
  };
}

export interface Chunk {
  readonly hash: string;
  readonly bytes: Uint8Array;
}

/**
 * A part's PNG cut into equal chunks of at most `limits.chunkBytes`, each named by its
 * SHA-256. Equal, not 256 KiB and a remainder: a tiny last chunk holding only the PNG's
 * trailer would be the same bytes in every such PNG, and so one chunk shared by unrelated
 * objects, which one of them might delete while the other still needs it.
 */
export async function cutIntoChunks(png: Uint8Array, chunkHash: ChunkHasher = sha256Hex): Promise<Chunk[]> {
  const count = Math.max(1, Math.ceil(png.byteLength / limits.chunkBytes));
  const size = Math.ceil(png.byteLength / count);
  const chunks: Chunk[] = [];
  for (let offset = 0; offset < png.byteLength; offset += size) {
    const bytes = png.subarray(offset, Math.min(png.byteLength, offset + size));
    chunks.push({ hash: await chunkHash(bytes), bytes });
  }
  if (chunks.length > limits.chunksPerPartMax) {
    throw new ValidationError(
      `a part's cover needs ${chunks.length} chunks, over the ${limits.chunksPerPartMax} limit`,
    );
  }
  return chunks;
}

/** The part size of manifests that do not record one (they were all sealed in 4 MiB parts). */
const legacyPartBytes = 4 * 1024 * 1024;

/** How much plaintext each part of this object holds. */
export const partBytesOf = (manifest: { readonly partBytes?: number }): number => manifest.partBytes ?? legacyPartBytes;

/**
 * A manifest's layout must add up (its size, its part size, its number of parts) before
 * any offset is computed from it; one that does not is damaged, or was never veil's.
 */
export function checkLayout(
  manifest: { readonly bytes: number; readonly partBytes?: number; readonly parts: readonly unknown[] },
): void {
  const partBytes = partBytesOf(manifest);
  const sane = Number.isSafeInteger(manifest.bytes) && manifest.bytes >= 0 && Number.isSafeInteger(partBytes) &&
    partBytes >= 1 && manifest.parts.length === Math.max(1, Math.ceil(manifest.bytes / partBytes));
  if (!sane) {
    throw new IntegrityError(
      `the manifest does not add up: ${manifest.bytes} bytes in ${manifest.parts.length} parts of ${partBytes}`,
    );
  }
}

/** How many parts an object of `bytes` is sealed in, `partBytes` each (an empty object still has one). */
export function partCount(bytes: number, partBytes: number = limits.vaultPartBytes): number {
  const parts = Math.max(1, Math.ceil(bytes / partBytes));
  if (parts > limits.partsPerObjectMax) {
    const mebibytes = (limits.partsPerObjectMax * limits.vaultPartBytes) / 1024 ** 2;
    throw new ValidationError(
      `veil stores files of up to ${mebibytes} MiB for now (a file's manifest is one event); this one has ${bytes} bytes`,
    );
  }
  return parts;
}

const pngSignature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Whether these bytes start like a PNG (the type is judged by content, not by the name). */
export function looksLikePng(head: Uint8Array): boolean {
  return pngSignature.every((byte, index) => head[index] === byte);
}

/** A name safe to write: its last path component, without control characters; never empty, never `..`. */
export function safeFileName(name: string): string {
  // deno-lint-ignore no-control-regex
  const base = (name.split(/[/\\]/).pop() ?? "").replace(/[\u0000-\u001f\u007f]/g, "").trim();
  return base === "" || base === "." || base === ".." ? "download" : base.slice(0, 255);
}
