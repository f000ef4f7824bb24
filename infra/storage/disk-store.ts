/**
 * A content-addressed chunk store in one folder (`<data>/storage/<node>/`). A chunk lives at
 * `<first two hex digits>/<hash>`; the name is validated as 64 lowercase hex digits before it
 * is used, so nothing from the network ever becomes a path. Writes go to `tmp/`, are synced,
 * renamed into place and the folder synced: a chunk is either whole or absent, also after a
 * crash, and a put resolves only once it is durable. Reads are checked against the hash.
 */
import { sha256Hex } from "../../actors/crypto/mod.ts";
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import type { ChunkEntry, ChunkStore, Logger } from "../../actors/ports.ts";
import { IntegrityError, ValidationError } from "../../events/mod.ts";

export const chunkHashPattern = /^[0-9a-f]{64}$/;

function checkHash(hash: string): string {
  if (!chunkHashPattern.test(hash)) {
    throw new ValidationError(`a chunk is named by 64 lowercase hex digits, got ${JSON.stringify(hash.slice(0, 80))}`);
  }
  return hash;
}

const missing = (error: unknown) => (error as NodeJS.ErrnoException).code === "ENOENT";

/** fsync a folder, so a rename in it survives a power cut. */
async function syncFolder(path: string): Promise<void> {
  const folder = await open(path, "r");
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

export function diskChunkStore(folder: string, logger: Logger): ChunkStore {
  const temporary = join(folder, "tmp");
  const pathOf = (hash: string) => join(folder, checkHash(hash).slice(0, 2), hash);

  return {
    async scan() {
      await mkdir(folder, { recursive: true, mode: 0o700 });
      // Whatever is in tmp/ was never acknowledged: an interrupted write.
      await rm(temporary, { recursive: true, force: true });
      await mkdir(temporary, { mode: 0o700 });
      let chunks = 0;
      let bytes = 0;
      for (const shard of await readdir(folder)) {
        if (shard === "tmp") continue;
        if (!/^[0-9a-f]{2}$/.test(shard)) {
          logger.warn("ignored a stray entry in the chunk store", { entry: shard });
          continue;
        }
        for (const name of await readdir(join(folder, shard))) {
          if (!chunkHashPattern.test(name) || !name.startsWith(shard)) {
            logger.warn("ignored a stray file in the chunk store", { file: `${shard}/${name}` });
            continue;
          }
          chunks++;
          bytes += (await stat(join(folder, shard, name))).size;
        }
      }
      return { chunks, bytes };
    },

    async put(hash, data, atMs) {
      const path = pathOf(hash);
      // The modification time is the chunk's touch time, set from the node's clock.
      const touched = new Date(atMs);
      const existing = await stat(path).catch((error) => (missing(error) ? undefined : Promise.reject(error)));
      // Held already, intact: nothing to write, only the touch. A copy that does not match its
      // name (another size, rotted bits) is damaged, and is replaced: a repair onto it must not
      // be told it was held.
      if (existing && existing.size === data.byteLength && (await sha256Hex(await readFile(path))) === hash) {
        await utimes(path, touched, touched);
        return { stored: false };
      }
      const partial = join(temporary, `${hash}.${randomBytes(6).toString("hex")}.partial`);
      const file = await open(partial, "wx", 0o600);
      try {
        await file.writeFile(data);
        await file.utimes(touched, touched);
        await file.sync();
      } catch (error) {
        await file.close();
        await rm(partial, { force: true });
        throw error;
      }
      await file.close();
      const shard = join(folder, hash.slice(0, 2));
      // A new shard folder must itself survive a power cut: sync its parent too.
      if (await mkdir(shard, { recursive: true, mode: 0o700 })) await syncFolder(folder);
      await rename(partial, path);
      await syncFolder(shard);
      return { stored: !existing };
    },

    async get(hash) {
      let data: Uint8Array;
      try {
        data = new Uint8Array(await readFile(pathOf(hash)));
      } catch (error) {
        if (missing(error)) return undefined;
        throw error;
      }
      if ((await sha256Hex(data)) !== hash) throw new IntegrityError(`chunk ${hash} no longer matches its hash`);
      return data;
    },

    async has(hash) {
      return await stat(pathOf(hash)).then(() => true, (error) => (missing(error) ? false : Promise.reject(error)));
    },

    async list(after, limit) {
      if (after !== undefined) checkHash(after);
      const entries: ChunkEntry[] = [];
      const shards = (await readdir(folder)).filter((name) => /^[0-9a-f]{2}$/.test(name)).sort();
      for (const shard of shards) {
        if (after !== undefined && shard < after.slice(0, 2)) continue;
        const names = (await readdir(join(folder, shard)))
          .filter((name) =>
            chunkHashPattern.test(name) && name.startsWith(shard) && (after === undefined || name > after)
          )
          .sort();
        for (const name of names) {
          const info = await stat(join(folder, shard, name)).catch((error) =>
            missing(error) ? undefined : Promise.reject(error)
          );
          // Deleted since the folder was read: not held any more.
          if (!info) continue;
          entries.push({ hash: name, bytes: info.size, touchedAtMs: Math.floor(info.mtimeMs) });
          if (entries.length >= limit) return entries;
        }
      }
      return entries;
    },

    async delete(hash, options = {}) {
      const path = pathOf(hash);
      try {
        const { size, mtimeMs } = await stat(path);
        if (options.untouchedSinceMs !== undefined && mtimeMs >= options.untouchedSinceMs) return 0;
        await rm(path);
        return size;
      } catch (error) {
        if (missing(error)) return 0;
        throw error;
      }
    },
  };
}
