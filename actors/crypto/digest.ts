/**
 * SHA-256 of chunk-sized data, through Web Crypto: native on Node and Deno, and about seven
 * times the speed of the pure-JS hash on 256 KiB chunks (146 against 1045 MB/s measured
 * here), which matters because every chunk is hashed by its uploader, by each node that
 * stores it, and by each reader. Small inputs (tokens, ids) keep the synchronous hash.
 */
import { bytesToHex } from "@noble/hashes/utils.js";

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)));
}
