/**
 * Sharing decisions, pure: given the aggregate's state (from the projections, at the
 * aggregate's latest sequence) and the time, each either returns the events to append or
 * throws the typed error the caller gets. The host appends with the expected sequence, so
 * two concurrent decisions on one request or grant cannot both stand. Someone who is not a
 * party to a request or grant is told it does not exist, like one that does not.
 */
import { pastTime } from "../expiry.ts";
import {
  ConflictError,
  ForbiddenError,
  type GrantEvent,
  limits,
  NotFoundError,
  type RequestEvent,
} from "../../../events/mod.ts";
import type { GrantState, ImageManifest, RequestState } from "../../../projections/mod.ts";

type SharingEvent = RequestEvent | GrantEvent;
type Data<Type extends SharingEvent["type"]> = Extract<SharingEvent, { type: Type }>["data"];

/** Builds an event with the host's id and time: deciders never read the clock themselves. */
export type SharingEventMaker = <Type extends SharingEvent["type"]>(type: Type, data: Data<Type>) => SharingEvent;

const unknownRequest = (id: string) => new NotFoundError(`no request ${id}`);
const unknownGrant = (id: string) => new NotFoundError(`no grant ${id}`);

export function decideRequest(
  command: {
    request: string;
    from: string;
    owner: string;
    reference: string;
    /** The owner's object the reference names, if any. */
    image: ImageManifest | undefined;
    /** The asker's requests still pending. */
    pendingFromAsker: number;
    now: number;
  },
  make: SharingEventMaker,
) {
  const { image } = command;
  // Not there, not the owner's, or not shown: all look the same, so a request reveals nothing.
  if (!image || image.owner !== command.owner || !image.discoverable || image.grant !== undefined) {
    throw new NotFoundError(`${command.owner} shows no object ${JSON.stringify(command.reference)}`);
  }
  if (command.from === command.owner) throw new ConflictError("that object is yours already");
  if (command.pendingFromAsker >= limits.openRequestsPerUserMax) {
    throw new ConflictError(
      `you have ${limits.openRequestsPerUserMax} requests waiting already; wait for answers before asking again`,
    );
  }
  return [
    make("AccessRequested", {
      request: command.request,
      from: command.from,
      owner: command.owner,
      image: image.image,
      // The name the owner shows it under: the servers know no other (a manifest's is sealed).
      name: image.shownName ?? image.image,
      expiresAt: command.now + limits.requestExpiryMs,
    }),
  ];
}

/** The owner's answer to a pending request: only its owner may give one, only once, only in time. */
export function checkAnswerable(request: RequestState | undefined, id: string, user: string, now: number) {
  if (!request || (request.owner !== user && request.from !== user)) throw unknownRequest(id);
  if (request.owner !== user) throw new ForbiddenError(`only ${request.owner} can answer request ${id}`);
  if (request.status !== "pending") throw new ConflictError(`request ${id} was ${request.status} already`);
  if (now >= request.expiresAt) throw new ConflictError(`request ${id} has expired`);
  return request;
}

export function decideDeny(
  request: RequestState | undefined,
  id: string,
  user: string,
  now: number,
  make: SharingEventMaker,
) {
  checkAnswerable(request, id, user, now);
  return [make("RequestDenied", { request: id })];
}

export function decideExpireRequest(request: RequestState, now: number, make: SharingEventMaker) {
  if (request.status !== "pending" || now < request.expiresAt) return [];
  return [make("RequestExpired", { request: request.request })];
}

/** Whether a grant still gives views at `now`, or the reason it does not. */
function checkOpen(grant: GrantState, now: number) {
  if (grant.status === "closed") {
    const why = { "views-spent": "no views left", expired: "it has expired", revoked: "it was revoked" };
    throw new ConflictError(`grant ${grant.grant} is closed: ${why[grant.closedReason!]}`);
  }
  if (pastTime(grant.expiresAt, now)) throw new ConflictError(`grant ${grant.grant} is closed: it has expired`);
  if (grant.viewsLeft === 0) throw new ConflictError(`grant ${grant.grant} is closed: no views left`);
}

/**
 * One view for the recipient. The last one leaves no views; the grant's closing follows in
 * its own append (an append with an expected sequence takes one event), by the server that
 * spent it or, failing that, by the leader's sweep: the view count already refuses more.
 */
export function decideView(
  grant: GrantState | undefined,
  command: { grant: string; view: string; viewer: string; now: number },
  make: SharingEventMaker,
) {
  if (!grant || (grant.recipient !== command.viewer && grant.owner !== command.viewer)) {
    throw unknownGrant(command.grant);
  }
  if (grant.recipient !== command.viewer) {
    throw new ForbiddenError(`only ${grant.recipient} can view grant ${grant.grant}`);
  }
  if (grant.viewIds.includes(command.view)) {
    throw new ConflictError(`view ${command.view} of grant ${grant.grant} was answered already; nothing spent`);
  }
  checkOpen(grant, command.now);
  const viewsLeft = grant.viewsLeft - 1;
  return [make("ViewConsumed", { grant: grant.grant, view: command.view, viewer: command.viewer, viewsLeft })];
}

export function decideRevoke(grant: GrantState | undefined, id: string, user: string, make: SharingEventMaker) {
  if (!grant || (grant.owner !== user && grant.recipient !== user)) throw unknownGrant(id);
  if (grant.owner !== user) throw new ForbiddenError(`only ${grant.owner} can revoke grant ${id}`);
  if (grant.status === "closed") throw new ConflictError(`grant ${id} is closed already`);
  return [make("GrantClosed", { grant: id, reason: "revoked" })];
}

/** A grant whose time is up or whose views are spent is closed (the leader's sweep, or the last viewer's server). */
export function decideCloseGrant(grant: GrantState, now: number, make: SharingEventMaker) {
  if (grant.status !== "open") return [];
  if (grant.viewsLeft === 0) return [make("GrantClosed", { grant: grant.grant, reason: "views-spent" })];
  if (pastTime(grant.expiresAt, now)) return [make("GrantClosed", { grant: grant.grant, reason: "expired" })];
  return [];
}
