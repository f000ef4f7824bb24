/**
 * Transfers to and from files on this machine: an upload reads the file a part at a time; a
 * download writes beside its target (0600) and renames into place only once the whole was
 * checked, so an interrupted download leaves no half-written file under the name asked for.
 */
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import type { FileSink, FileSource } from "../../actors/ports.ts";
import { ValidationError } from "../../events/mod.ts";
import { exists } from "../files.ts";

/** Opens `path` for an upload; `close` it when done. */
export async function openFileSource(path: string): Promise<FileSource & { close(): Promise<void> }> {
  const handle = await open(path, "r").catch((cause: NodeJS.ErrnoException) => {
    throw new ValidationError(`cannot read ${path}: ${cause.code === "ENOENT" ? "no such file" : cause.message}`, {
      cause,
    });
  });
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new ValidationError(`${path} is not a file`);
    return {
      size: info.size,
      read: async (into, offset) => (await handle.read(into, 0, into.byteLength, offset)).bytesRead,
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** A download's file: written beside `output` and renamed over it on commit (refused if it exists, unless `force`). */
export async function openFileSink(output: string, force = false): Promise<FileSink & { readonly path: string }> {
  if (!force && (await exists(output))) throw new ValidationError(`${output} exists; add --force to replace it`);
  const partial = join(dirname(output), `.${basename(output)}.${randomBytes(6).toString("hex")}.partial`);
  const out = await open(partial, "wx", 0o600);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await out.close();
  };
  return {
    path: output,
    write: async (bytes, offset) => void (await out.write(bytes, 0, bytes.byteLength, offset)),
    async commit() {
      await out.sync();
      await close();
      await rename(partial, output);
    },
    async discard() {
      await close().catch(() => {});
      await rm(partial, { force: true });
    },
  };
}
