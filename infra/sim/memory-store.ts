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

export function memoryChunkStore(initial: Iterable<Uint8Array> = []): MemoryChunkStore {
  const chunks = new Map<string, Uint8Array>();
  for (const bytes of initial) chunks.set(bytesToHex(sha256(bytes)), bytes);
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
    async put(hash, bytes) {
      await passed();
      if (chunks.has(hash)) return { stored: false };
      chunks.set(hash, bytes.slice());
      return { stored: true };
    },
    async get(hash) {
      await passed();
      const bytes = chunks.get(hash);
      if (bytes && bytesToHex(sha256(bytes)) !== hash) {
        throw new IntegrityError(`chunk ${hash} no longer matches its hash`);
      }
      return bytes?.slice();
    },
    async has(hash) {
      await passed();
      return chunks.has(hash);
    },
    async delete(hash) {
      await passed();
      const size = chunks.get(hash)?.byteLength ?? 0;
      chunks.delete(hash);
      return size;
    },
  };
}
