/**
 * The platform's native hashes, for whole files: a file passes through its content hash whole,
 * and noble's pure-JS hash is seven times slower on this much. The values are noble's.
 */
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { sha256Hex } from "../actors/crypto/mod.ts";
import type { Digests, IncrementalHash } from "../actors/ports.ts";

const incremental = (hash: Hash | Hmac): IncrementalHash => ({
  update: (bytes) => void hash.update(bytes),
  digest: () => new Uint8Array(hash.digest()),
});

export const nativeDigests: Digests = {
  sha256: () => incremental(createHash("sha256")),
  hmacSha256: (key) => incremental(createHmac("sha256", key)),
  chunkHash: sha256Hex,
};
