/** Files held in memory, behind the same ports as files on disk. */
import type { FileSink, FileSource } from "../ports.ts";

/** A sink in memory, for what is opened to be used at once (an approval's re-sealing, a view). */
export function memorySink(bytes: number): FileSink & { readonly bytes: Uint8Array } {
  const buffer = new Uint8Array(bytes);
  return {
    bytes: buffer,
    write: (part, offset) => Promise.resolve(buffer.set(part, offset)),
    commit: () => Promise.resolve(),
    discard: () => Promise.resolve(void buffer.fill(0)),
  };
}

/** A source in memory: what an approval re-seals, what the simulator uploads. */
export function memorySource(bytes: Uint8Array): FileSource {
  return {
    size: bytes.byteLength,
    read(into: Uint8Array, offset: number) {
      const part = bytes.subarray(offset, offset + into.byteLength);
      into.set(part);
      return Promise.resolve(part.byteLength);
    },
  };
}
