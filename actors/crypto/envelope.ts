/**
 * The sealed-object format (v1). A fixed header, then the plaintext in segments, each
 * sealed with AES-256-GCM under the object's own random key:
 *
 *   header  = "VEIL" | version u8 | aead u8 | log2(segment bytes) u8 | reserved u8
 *             | object id (16 bytes) | plaintext length u64 (big-endian)          (32 bytes)
 *   segment = ciphertext | tag (16 bytes), for i = 0 .. n-1 (an empty object has one, empty)
 *   nonce_i = 4 zero bytes | i as u64 (big-endian)
 *   AD_i    = header | i as u32 | final flag u8
 *
 * The key is never reused across objects, so counter nonces are safe. Every segment is bound
 * to the whole header (length, object id, parameters), its index and whether it is the last:
 * tampering with the header, dropping, reordering or truncating segments, or splicing them
 * from another object all fail to open. AES-256-GCM runs natively through Web Crypto,
 * measured at about 1.1-1.5 GB/s here against 128 MB/s for XChaCha20-Poly1305 in pure JS.
 */
import { IntegrityError, limits, ValidationError } from "../../events/mod.ts";

export const envelopeMagic = new TextEncoder().encode("VEIL");
export const envelopeVersion = 1;
export const aeadIds = { "aes-256-gcm": 1 } as const;
export const headerBytes = 32;
export const tagBytes = 16;
const objectIdBytes = 16;

export interface EnvelopeHeader {
  readonly objectId: Uint8Array;
  readonly plaintextBytes: number;
  readonly segmentBytes: number;
}

export function encodeHeader(header: EnvelopeHeader): Uint8Array {
  const { objectId, plaintextBytes, segmentBytes } = header;
  if (objectId.byteLength !== objectIdBytes) throw new ValidationError(`an object id is ${objectIdBytes} bytes`);
  const log2 = Math.log2(segmentBytes);
  if (!Number.isInteger(log2) || log2 < 10 || log2 > 24) {
    throw new ValidationError(`segment size must be a power of two from 1 KiB to 16 MiB, got ${segmentBytes}`);
  }
  if (!Number.isSafeInteger(plaintextBytes) || plaintextBytes < 0 || plaintextBytes > limits.objectBytesMax) {
    throw new ValidationError(`an object holds at most ${limits.objectBytesMax} bytes, got ${plaintextBytes}`);
  }
  const bytes = new Uint8Array(headerBytes);
  bytes.set(envelopeMagic, 0);
  bytes[4] = envelopeVersion;
  bytes[5] = aeadIds["aes-256-gcm"];
  bytes[6] = log2;
  bytes.set(objectId, 8);
  new DataView(bytes.buffer).setBigUint64(24, BigInt(plaintextBytes));
  return bytes;
}

export function decodeHeader(sealed: Uint8Array): EnvelopeHeader {
  if (sealed.byteLength < headerBytes || !envelopeMagic.every((byte, index) => sealed[index] === byte)) {
    throw new IntegrityError("not a veil sealed object (no VEIL header)");
  }
  if (sealed[4] !== envelopeVersion) {
    throw new IntegrityError(`sealed with format version ${sealed[4]}; this veil reads version ${envelopeVersion}`);
  }
  if (sealed[5] !== aeadIds["aes-256-gcm"]) throw new IntegrityError(`unknown cipher id ${sealed[5]}`);
  const log2 = sealed[6]!;
  if (log2 < 10 || log2 > 24) throw new IntegrityError(`segment size 2^${log2} is out of range`);
  const plaintextBytes = Number(new DataView(sealed.buffer, sealed.byteOffset).getBigUint64(24));
  if (plaintextBytes > limits.objectBytesMax) {
    throw new IntegrityError(`claims ${plaintextBytes} bytes, over the limit`);
  }
  return { objectId: sealed.slice(8, 8 + objectIdBytes), plaintextBytes, segmentBytes: 2 ** log2 };
}

export function segmentCount(plaintextBytes: number, segmentBytes: number): number {
  return Math.max(1, Math.ceil(plaintextBytes / segmentBytes));
}

export function sealedBytes(plaintextBytes: number, segmentBytes: number = limits.segmentBytes): number {
  return headerBytes + plaintextBytes + segmentCount(plaintextBytes, segmentBytes) * tagBytes;
}

function nonce(index: number): Uint8Array {
  const bytes = new Uint8Array(12);
  new DataView(bytes.buffer).setBigUint64(4, BigInt(index));
  return bytes;
}

function associatedData(header: Uint8Array, index: number, final: boolean): Uint8Array {
  const bytes = new Uint8Array(header.byteLength + 5);
  bytes.set(header, 0);
  new DataView(bytes.buffer).setUint32(header.byteLength, index);
  bytes[header.byteLength + 4] = final ? 1 : 0;
  return bytes;
}

/** Web Crypto takes views over plain ArrayBuffers; ours always are. */
const view = (bytes: Uint8Array) => bytes as Uint8Array<ArrayBuffer>;

async function importKey(key: Uint8Array, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  if (key.byteLength !== 32) throw new ValidationError("an object key is 32 bytes");
  return await crypto.subtle.importKey("raw", view(key), "AES-GCM", false, [usage]);
}

/** Seals a whole object. `key` must be fresh for this object (see `newObjectKey`). */
export async function sealObject(
  key: Uint8Array,
  objectId: Uint8Array,
  plaintext: Uint8Array,
  segmentBytes: number = limits.segmentBytes,
): Promise<Uint8Array> {
  const header = encodeHeader({ objectId, plaintextBytes: plaintext.byteLength, segmentBytes });
  const cryptoKey = await importKey(key, "encrypt");
  const count = segmentCount(plaintext.byteLength, segmentBytes);
  const sealed = new Uint8Array(sealedBytes(plaintext.byteLength, segmentBytes));
  sealed.set(header, 0);
  let offset = headerBytes;
  for (let index = 0; index < count; index++) {
    const chunk = plaintext.subarray(index * segmentBytes, (index + 1) * segmentBytes);
    const box = new Uint8Array(
      await crypto.subtle.encrypt(
        {
          name: "AES-GCM",
          iv: view(nonce(index)),
          additionalData: view(associatedData(header, index, index === count - 1)),
        },
        cryptoKey,
        view(chunk),
      ),
    );
    sealed.set(box, offset);
    offset += box.byteLength;
  }
  return sealed;
}

/** Opens a sealed object, or throws an IntegrityError: wrong key, damaged or tampered bytes. */
export async function openObject(
  key: Uint8Array,
  sealed: Uint8Array,
): Promise<{ objectId: Uint8Array; plaintext: Uint8Array }> {
  const header = decodeHeader(sealed);
  if (sealed.byteLength !== sealedBytes(header.plaintextBytes, header.segmentBytes)) {
    throw new IntegrityError("the sealed object is truncated or has extra bytes");
  }
  const headerBytesRaw = sealed.subarray(0, headerBytes);
  const cryptoKey = await importKey(key, "decrypt");
  const count = segmentCount(header.plaintextBytes, header.segmentBytes);
  const plaintext = new Uint8Array(header.plaintextBytes);
  let offset = headerBytes;
  for (let index = 0; index < count; index++) {
    const length = Math.min(header.segmentBytes, header.plaintextBytes - index * header.segmentBytes) + tagBytes;
    try {
      const opened = await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: view(nonce(index)),
          additionalData: view(associatedData(headerBytesRaw, index, index === count - 1)),
        },
        cryptoKey,
        view(sealed.subarray(offset, offset + length)),
      );
      plaintext.set(new Uint8Array(opened), index * header.segmentBytes);
    } catch (cause) {
      throw new IntegrityError(`segment ${index} does not open: wrong key, or the data was damaged`, { cause });
    }
    offset += length;
  }
  return { objectId: header.objectId, plaintext };
}
