/**
 * The real random source: the platform's CSPRNG (Web Crypto). Small requests (nonces,
 * ids, keys: a sealed command takes three) are cut from a pool filled 4 KiB at a time,
 * because each call into the CSPRNG costs about 5 µs whatever its size, a quarter of what
 * sealing a command costs otherwise. Every byte is handed out once; the pool is
 * per-process (and per worker), never shared.
 */
import type { RandomSource } from "../actors/ports.ts";

/** What one `getRandomValues` call may fill. */
const requestBytesMax = 65_536;
const poolBytes = 4_096;
/** Requests at least this large go to the CSPRNG directly: the pool would only copy them. */
const pooledBytesMax = 256;

let pool: Uint8Array<ArrayBuffer> = new Uint8Array(0);
let used = 0;

function fill(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  for (let offset = 0; offset < bytes.byteLength; offset += requestBytesMax) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(bytes.byteLength, offset + requestBytesMax)));
  }
  return bytes;
}

export const cryptoRandom: RandomSource = {
  bytes(length) {
    if (length >= pooledBytesMax) return fill(new Uint8Array(length));
    if (used + length > pool.byteLength) {
      pool = fill(new Uint8Array(poolBytes));
      used = 0;
    }
    // A copy, so that a caller that keeps (or zeroes) its bytes never shares a buffer with another's.
    const bytes = pool.slice(used, used + length);
    pool.fill(0, used, used + length);
    used += length;
    return bytes;
  },
};
