/**
 * The storage node's effects over a ChunkStore: a put or get is checked against its ticket
 * before anything is read or written, and every chunk against its SHA-256 before it is
 * stored and after it is read. A chunk found damaged on read (a get, or the node's own
 * scrub, `verify`) is removed, so the leader's audit and repair put a good copy back, and a
 * get's caller gets an IntegrityError naming it.
 */
import { sha256Hex } from "../crypto/mod.ts";
import { fromPromise } from "xstate";
import { ForbiddenError, IntegrityError, NotFoundError } from "../../events/mod.ts";
import type { ChunkHasher, ChunkStore, Signatures } from "../ports.ts";
import { putBytes, type StorageContext, type StorageEvent, type StoreChange, type StoreResult } from "./machine.ts";
import { checkTicketAllows, ticketVerifier } from "./tickets.ts";

const unchanged: StoreChange = { bytes: 0, chunks: 0 };
type Request = Extract<StorageEvent, { type: "REQUEST" }>;

/** Checks a put's or get's ticket; any failure is a ForbiddenError and the request goes no further. */
function ticketChecker(signatures: Signatures | undefined) {
  let verifier: { key: Uint8Array; check: ReturnType<typeof ticketVerifier> } | undefined;
  return (context: Pick<StorageContext, "nodeId" | "ticketKey">, request: Request) => {
    if (request.operation !== "put" && request.operation !== "get") return;
    const what = request.operation === "put" ? "; nothing stored" : "";
    if (!request.ticket) {
      throw new ForbiddenError(
        `a ${request.operation} on storage node ${context.nodeId} needs a ticket ` +
          `(a put's from the leader's placement, a get's from vault.get)${what}`,
      );
    }
    if (request.atMs === undefined) throw new Error("programmer error: a put or get arrives with its time");
    // The machine admits no put or get before it has the key; the key never changes after.
    const key = context.ticketKey!;
    if (verifier?.key !== key) verifier = { key, check: ticketVerifier(key, signatures ? { signatures } : {}) };
    try {
      const ticket = verifier.check.verify(request.ticket, { node: context.nodeId, now: request.atMs });
      checkTicketAllows(ticket, { op: request.operation, hash: request.hash!, bytes: request.bytes?.byteLength });
    } catch (error) {
      if (!(error instanceof ForbiddenError)) throw error;
      throw new ForbiddenError(`${error.message}${what}`, { cause: error });
    }
  };
}

/**
 * A chunk read back and checked; a damaged one is removed, and what that freed is said. A
 * good copy put meanwhile (a repair) touches the chunk, and is kept.
 */
async function readChecked(
  store: ChunkStore,
  hash: string,
  atMs: number,
): Promise<{ bytes: Uint8Array | undefined } | { removed: StoreChange }> {
  try {
    return { bytes: await store.get(hash) };
  } catch (error) {
    if (!(error instanceof IntegrityError)) throw error;
    const freed = await store.delete(hash, { untouchedSinceMs: atMs });
    return { removed: { bytes: -freed, chunks: freed > 0 ? -1 : 0 } };
  }
}

async function run(
  store: ChunkStore,
  nodeId: string,
  request: Request,
  chunkHash: ChunkHasher,
): Promise<{ value: unknown; change: StoreChange }> {
  const hash = request.hash!;
  switch (request.operation) {
    case "put": {
      const bytes = request.bytes!;
      if ((await chunkHash(bytes)) !== hash) {
        throw new IntegrityError(`the chunk sent as ${hash} does not match that hash; nothing stored`);
      }
      const { stored } = await store.put(hash, bytes, request.atMs!);
      return { value: { stored }, change: stored ? { bytes: bytes.byteLength, chunks: 1 } : unchanged };
    }
    case "get": {
      const read = await readChecked(store, hash, request.atMs!);
      if ("removed" in read) {
        throw Object.assign(new IntegrityError(`chunk ${hash} was damaged on ${nodeId}; removed for repair`), {
          change: read.removed,
        });
      }
      if (!read.bytes) throw new NotFoundError(`no chunk ${hash} on ${nodeId}`);
      return { value: read.bytes, change: unchanged };
    }
    case "verify": {
      const read = await readChecked(store, hash, request.atMs!);
      return "removed" in read
        ? { value: { damaged: true }, change: read.removed }
        : { value: { damaged: false }, change: unchanged };
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

/**
 * `learnTicketKey` finds the cluster's ticket public key: the process's own when it has the
 * cluster key, otherwise asked of the servers (actors/storage-node/ticket-key.ts).
 */
export function storageEffects(
  store: ChunkStore,
  learnTicketKey: (signal: AbortSignal) => Promise<Uint8Array>,
  /** How tickets' signatures are checked: the platform's native Ed25519 in production. */
  signatures?: Signatures,
  chunkHash: ChunkHasher = sha256Hex,
) {
  const checkTicket = ticketChecker(signatures);
  return {
    actions: {
      perform: (
        { context, event, self }: {
          context: Pick<StorageContext, "nodeId" | "ticketKey">;
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
        Promise.resolve().then(() => {
          checkTicket(context, event);
          return run(store, context.nodeId, event, chunkHash);
        }).then(
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
    actors: {
      scanStore: fromPromise(() => store.scan()),
      learnTicketKey: fromPromise<Uint8Array>(({ signal }) => learnTicketKey(signal)),
    },
  };
}
