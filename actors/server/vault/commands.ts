/**
 * The vault's commands on `veil.cmd.vault.*`, for a logged-in owner: record an uploaded
 * object's manifest (its chunks already on their nodes), list, look up and remove one's own
 * objects, by id. Anyone else's object is "not found", exactly like one that does not exist.
 * Names are sealed in manifests: the owner's machine opens them and resolves a name to an id.
 */
import type { Bus, Clock, EventLog, IdSource, Signatures } from "../../ports.ts";
import { decideRemove, decideStore, type ImageEventMaker } from "./decider.ts";
import { checkTicketAllows, type TicketIssuer, verifyTicket } from "../../storage-node/tickets.ts";
import { storeRequest } from "../../storage-node/client.ts";
import {
  ConcurrencyError,
  ConflictError,
  imageSubject,
  limits,
  NotFoundError,
  pageOf,
  timeKey,
  vaultRequests,
  type VeilEvent,
  veilEvent,
} from "../../../events/mod.ts";
import {
  chunksOf,
  findImage,
  type GrantsState,
  type ImageManifest,
  imagesOf,
  type ImagesState,
  referencedChunks,
  storedSummaryOf,
  type UsersState,
} from "../../../projections/mod.ts";
import type { Projector } from "../projector.ts";
import { type CommandHandler } from "../commands.ts";
import { atLatest, decideAndAppend } from "../decide-and-append.ts";
import { userSessions } from "../accounts/sessions.ts";

const requests = vaultRequests;

export function vaultCommands(deps: {
  nodeId: string;
  bus: Bus;
  log: EventLog;
  users: Projector<UsersState>;
  images: Projector<ImagesState>;
  grants: Projector<GrantsState>;
  clock: Clock;
  ids: IdSource;
  tickets: TicketIssuer;
  /** What put tickets are checked with when an upload hands its chunks back. */
  ticketKey: Uint8Array;
  signatures: Signatures;
}): Record<string, CommandHandler> {
  const { nodeId, bus, log, users, images, grants, clock, ids, tickets } = deps;
  const { session } = userSessions({ log, users, clock });
  const origin = () => ({ id: ids.next(), at: clock.now(), by: nodeId });
  const make: ImageEventMaker = (type, data) => veilEvent(type, data as never, origin()) as VeilEvent;
  /** The images projection as of now: anything appended before this call is in it. */
  const own = async (request: { user: string; image: string }) => {
    await images.caughtUp();
    const image = findImage(images.state, request.user, request.image);
    if (!image) throw new NotFoundError(`no object ${JSON.stringify(request.image)} in your vault`);
    return image;
  };

  return {
    "vault.store": async (data) => {
      const { user, token } = requests.plain.parse(data);
      await session({ user, token });
      await images.caughtUp();
      const event = decideStore((data as { manifest?: unknown }).manifest, user, images.state, make);
      const stored = event.data as ImageManifest;
      let seq: number;
      try {
        // A new object's subject is empty: a second store of one id is a conflict, not a change.
        [seq] = await log.append(imageSubject(stored.image), [event], { expectedSubjectSeq: 0 }) as [number];
      } catch (error) {
        if (error instanceof ConcurrencyError) throw new ConflictError(`object ${stored.image} exists already`);
        throw error;
      }
      // Recorded: from here on the answer is success, even if this server's projection is slow to show it.
      await images.waitFor(seq, limits.commandTimeoutMs).catch(() => {});
      return storedSummaryOf({ ...stored, storedAt: clock.now() });
    },

    "vault.list": async (data) => {
      const request = requests.list.parse(data);
      await session(request);
      await images.caughtUp();
      // A page at a time: a vault of thousands of files would not fit in one message.
      const after = request.after && `${timeKey(Number(request.after.split(":")[0]))}:${request.after.split(":")[1]}`;
      const page = pageOf(
        imagesOf(images.state, request.user),
        (image) => `${timeKey(image.storedAt)}:${image.image}`,
        {
          after,
          limit: request.limit,
        },
      );
      return { files: page.items.map(storedSummaryOf), ...(page.next ? { next: page.next } : {}) };
    },

    /** The owner's manifest, with get tickets for its chunks (and its preview's) on the nodes that hold them. */
    "vault.get": async (data) => {
      const request = requests.get.parse(data);
      await session(request);
      const image = await own(request);
      return { ...image, tickets: tickets.get(chunksOf(image)) };
    },

    /**
     * A download found a replica damaged or missing. The node is asked; once it says it no
     * longer holds the chunk, that is recorded (`ChunkLost`) and the leader's repair copies
     * a good replica back.
     */
    "vault.damaged": async (data) => {
      const request = requests.damaged.parse(data);
      await session(request);
      const image = await own(request);
      const listed = chunksOf(image).some((chunk) => chunk.hash === request.hash && chunk.nodes.includes(request.node));
      if (!listed) throw new NotFoundError(`chunk ${request.hash} is not recorded on ${request.node}`);
      const held = await storeRequest(bus, request.node, "has", { hash: request.hash }).catch(() => undefined);
      if (held !== false) return { recorded: false };
      await log.append(imageSubject(image.image), [
        veilEvent("ChunkLost", { image: image.image, hash: request.hash, node: request.node }, origin()),
      ]);
      return { recorded: true };
    },

    /**
     * Takes back what a failed upload stored, at once instead of at the next garbage
     * collection. Users' machines may not delete chunks: the server does, for chunks the
     * caller shows a live put ticket for (so it placed them itself, moments ago) and that no
     * manifest references. Deleting is best effort, like the collection that would follow.
     */
    "vault.abandon": async (data) => {
      const request = requests.abandon.parse(data);
      await session(request);
      const now = clock.now();
      for (const chunk of request.chunks) {
        checkTicketAllows(verifyTicket(deps.ticketKey, chunk.ticket, { node: chunk.node, now }, deps.signatures), {
          op: "put",
          hash: chunk.hash,
        });
      }
      await images.caughtUp();
      const referenced = referencedChunks(images.state);
      let freed = 0;
      for (const chunk of request.chunks) {
        if (referenced.has(chunk.hash)) continue;
        freed += await storeRequest(bus, chunk.node, "delete", { hash: chunk.hash })
          .then((reply) => reply.freed, () => 0);
      }
      return { freed };
    },

    "vault.remove": async (data) => {
      const request = requests.get.parse(data);
      await session(request);
      // A grant's copy is removed by its grant's closing; a copy no grant was recorded for
      // (an approval that failed part-way) may be removed by its owner, by id.
      await Promise.all([images.caughtUp(), grants.caughtUp()]);
      const { image } = decideRemove(request, images.state, grants.state, make);
      // Decided again at the object's sequence: a repair's record or another removal in between
      // is seen before this one is appended (a second removal finds nothing to remove).
      const subject = imageSubject(image.image);
      await decideAndAppend({
        log,
        subject,
        what: `object ${image.image}`,
        load: atLatest(log, subject, images),
        decide: () => ({
          events: [decideRemove({ user: request.user, image: image.image }, images.state, grants.state, make).event],
        }),
        applied: (seq) => images.waitFor(seq, limits.commandTimeoutMs),
      });
      return storedSummaryOf(image);
    },
  };
}
