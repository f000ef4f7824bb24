/**
 * Sharing commands, for logged-in users: who is online and what they show, public keys, and
 * requests (`request.*`); grants are in grants.ts. Each decision is made against its
 * aggregate at its latest sequence and appended with that sequence expected, so two servers
 * cannot both answer a request: the loser reloads and decides again.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { decideDeny, decideRequest } from "./decider.ts";
import {
  imageSubject,
  limits,
  NotFoundError,
  pageOf,
  requestSubject,
  sharingRequests,
  timeKey,
  ValidationError,
  veilEvent,
} from "../../../events/mod.ts";
import {
  findImage,
  findShown,
  type HealthState,
  type HeartbeatTimeouts,
  imagesOf,
  isAlive,
  requestOf,
  type RequestState,
  userOf,
  type UsersState,
} from "../../../projections/mod.ts";
import type { Projector } from "../projector.ts";
import { type CommandHandler } from "../commands.ts";
import { userSessions } from "../accounts/sessions.ts";
import type { SharingDeps, SharingDuties } from "./duties.ts";

const requests = sharingRequests;

/** A request as its parties see it; a pending one past its time shows as expired. */
function requestView(request: RequestState, now: number) {
  const status = request.status === "pending" && now >= request.expiresAt ? "expired" : request.status;
  return {
    request: request.request,
    from: request.from,
    owner: request.owner,
    image: request.image,
    name: request.name,
    status,
    requestedAt: request.requestedAt,
    expiresAt: request.expiresAt,
    ...(request.decidedAt === undefined ? {} : { decidedAt: request.decidedAt }),
    ...(request.grant === undefined ? {} : { grant: request.grant }),
  };
}

export function sharingCommands(
  deps: SharingDeps & {
    users: Projector<UsersState>;
    duties: SharingDuties;
    presence: () => HealthState;
    heartbeatTimeouts: HeartbeatTimeouts;
  },
): Record<string, CommandHandler> {
  const { nodeId, log, clock, ids, images, users, random, duties } = deps;
  const { session } = userSessions({ log, users, clock });
  const { make, latest, notify, decideAndAppend } = duties;
  const newId = () => bytesToHex(random.bytes(16));

  return {
    /** Anyone's public key: what a grant for them is sealed to. */
    "user.publicKey": async (data) => {
      const request = requests.publicKey.parse(data);
      await session(request);
      const other = userOf(users.state, request.of);
      if (other?.status !== "active") throw new NotFoundError(`no user ${request.of}`);
      return { user: request.of, publicKey: other.publicKey };
    },

    "vault.discoverable": async (data) => {
      const request = requests.discoverable.parse(data);
      await session(request);
      await images.caughtUp();
      const image = findImage(images.state, request.user, request.image);
      if (!image) throw new NotFoundError(`no object ${JSON.stringify(request.image)} in your vault`);
      // Shown under the name the owner sends (a legacy manifest's own, if it has one): it becomes public.
      const name = request.discoverable ? request.name ?? image.legacy?.name : undefined;
      if (request.discoverable && !name) throw new ValidationError("name: say what to show the object as");
      const seq = await log.append(imageSubject(image.image), [
        veilEvent("DiscoverabilityChanged", {
          owner: request.user,
          image: image.image,
          discoverable: request.discoverable,
          ...(name ? { name } : {}),
        }, { id: ids.next(), at: clock.now(), by: nodeId }),
      ]);
      await images.waitFor(seq[0]!, limits.commandTimeoutMs).catch(() => {});
      return { image: image.image, ...(name ? { name } : {}), discoverable: request.discoverable };
    },

    /** Users whose peers are online now (presence), and the objects each one shows. */
    "peer.online": async (data) => {
      const request = requests.online.parse(data);
      await session(request);
      await images.caughtUp();
      const now = clock.now();
      const online = Object.entries(deps.presence().nodes).filter(([user, view]) =>
        view.role === "peer" && view.state === "online" && user !== request.user &&
        (request.of === undefined || user === request.of) && isAlive(view, now, deps.heartbeatTimeouts)
      );
      const page = pageOf(online, ([user]) => user, {
        after: request.after,
        limit: request.limit ?? limits.onlinePageMax,
      });
      const users = page.items.map(([user, view]) => ({
        user,
        lastSeenAt: view.lastSeenAt,
        images: imagesOf(images.state, user)
          .filter((image) => image.discoverable)
          .slice(-limits.discoverablePerUserMax)
          .map((image) => ({
            image: image.image,
            name: image.shownName ?? image.image,
            bytes: image.bytes,
            preview: image.preview !== undefined,
          })),
      }));
      return { users, ...(page.next ? { next: page.next } : {}) };
    },

    "request.create": async (data) => {
      const ask = requests.ask.parse(data);
      await session(ask);
      await Promise.all([images.caughtUp(), deps.requests.caughtUp()]);
      const id = newId();
      const now = clock.now();
      const pendingFromAsker = Object.values(deps.requests.state.requests)
        .filter((request) => request.from === ask.user && request.status === "pending" && now < request.expiresAt)
        .length;
      const events = decideRequest({
        request: id,
        from: ask.user,
        owner: ask.owner,
        reference: ask.image,
        image: findShown(images.state, ask.owner, ask.image),
        pendingFromAsker,
        now,
      }, make);
      const [seq] = await log.append(requestSubject(id), events, { expectedSubjectSeq: 0 });
      await deps.requests.waitFor(seq!, limits.commandTimeoutMs);
      const created = requestOf(deps.requests.state, id)!;
      notify(ask.owner, {
        kind: "request",
        text:
          `${ask.user} asks to see ${created.name} (request ${id}); veil approve ${id} --views N, or veil deny ${id}`,
        request: id,
      });
      return requestView(created, now);
    },

    "request.list": async (data) => {
      const request = requests.list.parse(data);
      await session(request);
      await deps.requests.caughtUp();
      const now = clock.now();
      // Incoming and outgoing paged together, oldest first: requests others send cannot outgrow a reply.
      const mine = Object.values(deps.requests.state.requests)
        .filter((one) => one.owner === request.user || one.from === request.user);
      const page = pageOf(mine, (one) => `${timeKey(one.requestedAt)}:${one.request}`, request);
      return {
        incoming: page.items.filter((one) => one.owner === request.user).map((one) => requestView(one, now)),
        outgoing: page.items.filter((one) => one.from === request.user).map((one) => requestView(one, now)),
        ...(page.next ? { next: page.next } : {}),
      };
    },

    "request.show": async (data) => {
      const asked = requests.request.parse(data);
      await session(asked);
      await latest(requestSubject(asked.request), deps.requests);
      const request = requestOf(deps.requests.state, asked.request);
      if (!request || (request.owner !== asked.user && request.from !== asked.user)) {
        throw new NotFoundError(`no request ${asked.request}`);
      }
      return requestView(request, clock.now());
    },

    "request.deny": async (data) => {
      const asked = requests.request.parse(data);
      await session(asked);
      await decideAndAppend(
        requestSubject(asked.request),
        deps.requests,
        () => decideDeny(requestOf(deps.requests.state, asked.request), asked.request, asked.user, clock.now(), make),
      );
      const request = requestOf(deps.requests.state, asked.request)!;
      notify(request.from, {
        kind: "request-denied",
        text: `${request.owner} denied your request for ${request.name}`,
        request: request.request,
      });
      return { request: asked.request, status: "denied" };
    },
  };
}
