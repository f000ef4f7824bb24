/**
 * A chunk store in memory, for the simulator and machine tests: the same contract as the
 * disk store (checked reads, idempotent puts), with hooks to hold operations open and to
 * damage a chunk, so tests can drive states and faults deterministically.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { ChunkStore } from "../../actors/ports.ts";
import { IntegrityError } from "../../events/mod.ts";

export interface MemoryChunkStore extends ChunkStore {
  readonly chunks: Map<string, Uint8Array>;
  /** Operations wait on this gate while it is closed. */
  hold(): void;
  release(): void;
  damage(hash: string): void;
}

/** Each held copy's hash, by the copy: a damaged copy is a new array, so it is hashed anew. */
const hashOfCopy = new WeakMap<Uint8Array, string>();
export function hashOf(bytes: Uint8Array): string {
  let hash = hashOfCopy.get(bytes);
  if (hash === undefined) hashOfCopy.set(bytes, hash = bytesToHex(sha256(bytes)));
  return hash;
}

export function memoryChunkStore(initial: Iterable<Uint8Array> = []): MemoryChunkStore {
  const chunks = new Map<string, Uint8Array>();
  const touched = new Map<string, number>();
  for (const bytes of initial) {
    const hash = bytesToHex(sha256(bytes));
    chunks.set(hash, bytes);
    touched.set(hash, 0);
  }
  let gate: Promise<void> = Promise.resolve();
  let open = () => {};
  const passed = () => gate;
  return {
    chunks,
    hold() {
      gate = new Promise((resolve) => (open = resolve));
    },
    release() {
      open();
      gate = Promise.resolve();
    },
    damage(hash) {
      const bytes = chunks.get(hash);
      if (bytes) chunks.set(hash, bytes.map((byte, index) => (index === 0 ? byte ^ 1 : byte)));
    },
    async scan() {
      await passed();
      return { chunks: chunks.size, bytes: [...chunks.values()].reduce((sum, bytes) => sum + bytes.byteLength, 0) };
    },
    async put(hash, bytes, atMs) {
      await passed();
      touched.set(hash, atMs);
      // Held and intact: nothing to write. A damaged copy is replaced, as the disk store does.
      const held = chunks.get(hash);
      if (held && hashOf(held) === hash) return { stored: false };
      chunks.set(hash, bytes.slice());
      return { stored: !held };
    },
    async get(hash) {
      await passed();
      const bytes = chunks.get(hash);
      if (bytes && hashOf(bytes) !== hash) {
        throw new IntegrityError(`chunk ${hash} no longer matches its hash`);
      }
      return bytes?.slice();
    },
    async has(hash) {
      await passed();
      return chunks.has(hash);
    },
    async list(after, limit) {
      await passed();
      return [...chunks.keys()]
        .filter((hash) => after === undefined || hash > after)
        .sort()
        .slice(0, limit)
        .map((hash) => ({ hash, bytes: chunks.get(hash)!.byteLength, touchedAtMs: touched.get(hash) ?? 0 }));
    },
    async delete(hash, options = {}) {
      await passed();
      const touchedAt = touched.get(hash) ?? 0;
      if (options.untouchedSinceMs !== undefined && touchedAt >= options.untouchedSinceMs) return 0;
      const size = chunks.get(hash)?.byteLength ?? 0;
      chunks.delete(hash);
      touched.delete(hash);
      return size;
    },
  };
}
