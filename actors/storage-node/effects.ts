/**
 * The storage node's effects over a ChunkStore: every chunk is checked against its SHA-256
 * before it is stored and after it is read. A chunk found damaged on read is removed, so the
 * leader's repair puts a good copy back, and the caller gets an IntegrityError naming it.
 */
import { sha256Hex } from "../crypto/mod.ts";
import { fromPromise } from "xstate";
import { IntegrityError, NotFoundError } from "../../events/mod.ts";
import type { ChunkStore } from "../ports.ts";
import { putBytes, type StorageEvent, type StoreChange, type StoreResult } from "./machine.ts";

const unchanged: StoreChange = { bytes: 0, chunks: 0 };

async function run(
  store: ChunkStore,
  nodeId: string,
  request: Extract<StorageEvent, { type: "REQUEST" }>,
): Promise<{ value: unknown; change: StoreChange }> {
  const hash = request.hash!;
  switch (request.operation) {
    case "put": {
      const bytes = request.bytes!;
      if ((await sha256Hex(bytes)) !== hash) {
        throw new IntegrityError(`the chunk sent as ${hash} does not match that hash; nothing stored`);
      }
      const { stored } = await store.put(hash, bytes, request.atMs!);
      return { value: { stored }, change: stored ? { bytes: bytes.byteLength, chunks: 1 } : unchanged };
    }
    case "get": {
      let bytes: Uint8Array | undefined;
      try {
        bytes = await store.get(hash);
      } catch (error) {
        if (!(error instanceof IntegrityError)) throw error;
        const freed = await store.delete(hash);
        throw Object.assign(new IntegrityError(`chunk ${hash} was damaged on ${nodeId}; removed for repair`), {
          change: { bytes: -freed, chunks: freed > 0 ? -1 : 0 },
        });
      }
      if (!bytes) throw new NotFoundError(`no chunk ${hash} on ${nodeId}`);
      return { value: bytes, change: unchanged };
    }
    case "has":
      return { value: await store.has(hash), change: unchanged };
    case "list":
      return { value: await store.list(request.after, request.limit!), change: unchanged };
    case "delete": {
      const freed = await store.delete(
        hash,
        request.untouchedSinceMs === undefined ? {} : { untouchedSinceMs: request.untouchedSinceMs },
      );
      return { value: { freed }, change: { bytes: -freed, chunks: freed > 0 ? -1 : 0 } };
    }
    case "stat":
      throw new Error("programmer error: stat is answered by the machine");
  }
}

export function storageEffects(store: ChunkStore) {
  return {
    actions: {
      perform: (
        { context, event, self }: {
          context: { nodeId: string };
          event: StorageEvent;
          self: { send(event: StorageEvent): void };
        },
      ) => {
        if (event.type !== "REQUEST") return;
        const reservedBytes = putBytes(event);
        const reply = (result: StoreResult) => {
          try {
            event.reply(result);
          } catch {
            // The caller is gone (a closing connection): the work is done all the same.
          }
        };
        run(store, context.nodeId, event).then(
          ({ value, change }) => {
            reply({ ok: true, value });
            return change;
          },
          (error: Error & { change?: StoreChange }) => {
            reply({ ok: false, error });
            return error.change ?? unchanged;
          },
        ).then((change) => self.send({ type: "SETTLED", change, reservedBytes }));
      },
    },
    actors: { scanStore: fromPromise(() => store.scan()) },
  };
}
